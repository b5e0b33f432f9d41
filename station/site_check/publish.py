"""`site-check --publish`: the signed report to the province, and its receipt.

The province keeps each site's acceptance reports as its record that the site was checked (and
when, and what failed). The report is signed with the site key, the key results are signed with,
so the province can tell it came from this site unchanged; it goes QoS 1 on
`examstation/v1/{site}/acceptance` and counts as delivered only when the province's signed
acceptance receipt names it (a PUBACK proves nothing, as for results). Snapshots stay at the site:
the report names them.

The key is never created here: a missing key is an error saying to restore it, since a new key
would not match the one the province registered.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from station.config import SiteConfig
from station.signing import KEY_FILE, SigningError, SiteKey
from station.site_check.acceptance_link import ExchangeError, acceptance_message, exchange
from station.site_check.report import Report
from station.site_check.uplink_check import FIXES, RECEIPT_TIMEOUT_S
from station.uplink.receipts import ReceiptKeyError, load_province_key


class PublishError(Exception):
    """The report did not reach the province with a receipt; the message says why and what to do."""


class PublishRejected(PublishError):
    """The province answered, and refused the report; the message carries its reason."""


async def publish_report(report: Report, config: SiteConfig, data_dir: Path, *,
                         timeout_s: float = RECEIPT_TIMEOUT_S) -> str:
    """Sign the report, publish it and wait for the province's receipt: its status, `stored` (or
    `duplicate`). PublishRejected when the province refused it, PublishError for anything else."""
    path = data_dir / "keys" / KEY_FILE
    if not path.is_file():
        raise PublishError(f"no site signing key at {path}: the report cannot be signed. Restore the key from the "
                           "site's backup (a new key would not match the one the province registered); a new site "
                           "creates one with `examstation keys init` and registers `examstation keys export` with "
                           "the province")
    try:
        key = SiteKey.load(path)
        province_pem = load_province_key(config.uplink.province_key)
    except (SigningError, ReceiptKeyError) as err:
        raise PublishError(str(err)) from err
    if province_pem is None:
        raise PublishError("uplink.province_key is not set, so the province's receipt cannot be trusted; set it to "
                           "the province's receipt-signing public key (PEM)")
    message = key.sign(acceptance_message(config.site.id, "report", report.to_json()))
    try:
        done = await exchange(config, message, province_pem, timeout_s=timeout_s)
    except ExchangeError as err:
        raise PublishError(f"report not delivered to {config.uplink.broker_url}: {err}; "
                           f"{FIXES[err.failure].replace('{site}', config.site.id)}") from err
    status = str(done.receipt["status"])
    if status == "rejected":
        reason = done.receipt.get("reason")
        todo = ("the site's signing key does not match the key the province holds: restore the original key, or "
                "register `examstation keys export` with the province" if done.receipt.get("signature_ok") is False
                else "give the reason to the provincial exam centre")
        raise PublishRejected(f"the province rejected the report {done.acceptance_id}: {reason}; {todo}")
    return status


def publish_report_sync(report: Report, config: SiteConfig, data_dir: Path, *,
                        timeout_s: float = RECEIPT_TIMEOUT_S) -> str:
    """publish_report for a caller without an event loop."""
    return asyncio.run(publish_report(report, config, data_dir, timeout_s=timeout_s))
