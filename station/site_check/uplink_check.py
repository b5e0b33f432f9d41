"""The uplink check: a signed probe to the province and its signed receipt back.

This shows, end to end and with the site's own settings, what a paper checklist cannot: that the
broker answers, takes the site's login, lets it hear its receipt topic, that the province is there
and answers within seconds, that its receipts verify against the key configured as
`uplink.province_key`, and that the province verified the probe's signature against the key it
holds for this site (the signing key matches the registered one). A site whose key was re-created
would otherwise find out when its first real result is rejected.

One check, id `uplink`, whose failure names the step that failed and what to do about it. A
missing site key is the key check's failure (station.site_check.store_check); the probe then goes
unsigned, so the round trip is still measured and only that one failure shows.
"""

from __future__ import annotations

from typing import Any

from station.signing import KEY_FILE, SigningError, SiteKey
from station.site_check.acceptance_link import ExchangeError, acceptance_message, exchange
from station.site_check.report import Check, CheckContext
from station.uplink.receipts import ReceiptKeyError, load_province_key

RECEIPT_TIMEOUT_S = 10.0
"""The province answers a probe within milliseconds; 10 s allows a slow link and a busy province."""
TITLE = "uplink round trip: signed probe to the province, signed receipt back"


def site_key(ctx: CheckContext) -> SiteKey | None:
    """The site's signing key when it is there and readable (the key check reports it otherwise)."""
    path = ctx.data_dir / "keys" / KEY_FILE
    if not path.is_file():
        return None
    try:
        return SiteKey.load(path)
    except SigningError:
        return None


def _fail(detail: str, fix: str, **figures: Any) -> list[Check]:
    return [Check(id="uplink", category="uplink", title=TITLE, passed=False, detail=detail, fix=fix,
                  figures=dict(figures))]


FIXES = {
    "config": "correct the uplink section of the site config (broker_url mqtt://HOST:PORT or mqtts://HOST:PORT; "
              "password_file a readable file holding the MQTT password)",
    "unreachable": "check the network to the province's broker (cable, firewall, DNS) and uplink.broker_url; ask "
                   "the provincial exam centre whether its broker is up",
    "tls": "put the CA certificate the province issued in uplink.ca_file, and check the broker's host name",
    "auth": "check uplink.username and the password in uplink.password_file with the provincial exam centre",
    "subscribe": "ask the provincial exam centre to let this site's user subscribe to its receipt topic "
                 "examstation/v1/{site}/receipt (broker ACL)",
    "no_receipt": "the broker took the probe but the province did not answer: ask the provincial exam centre "
                  "whether its receiving server is running and subscribed to examstation/v1/+/acceptance",
    "untrusted": "uplink.province_key does not hold the key the province signs receipts with (or someone else "
                 "answered): get the current public key from the provincial exam centre and put it there",
}


async def check_uplink(ctx: CheckContext, *, timeout_s: float = RECEIPT_TIMEOUT_S) -> list[Check]:
    """The `uplink` check (see the module doc); never raises for a site fault."""
    config = ctx.config
    site = config.site.id
    try:
        province_pem = load_province_key(config.uplink.province_key)
    except ReceiptKeyError as err:
        return _fail(str(err), "put the PEM file of the province's public key, as the provincial exam centre "
                     "issued it, where uplink.province_key says")
    if province_pem is None:
        return _fail("uplink.province_key is not set, so no receipt from the province can be trusted and results "
                     "would stay queued", "ask the provincial exam centre for its receipt-signing public key (PEM) "
                     "and set uplink.province_key to that file")
    key = site_key(ctx)
    probe = acceptance_message(site, "probe")
    if key is not None:
        probe = key.sign(probe)
    try:
        done = await exchange(config, probe, province_pem, timeout_s=timeout_s)
    except ExchangeError as err:
        where = config.uplink.broker_url
        return _fail(f"{where}: {err}", FIXES[err.failure].replace("{site}", site), step=err.failure)
    receipt = done.receipt
    figures: dict[str, Any] = {"round_trip_ms": round(done.round_trip_ms, 1), "status": receipt["status"]}
    if receipt["status"] == "rejected" and receipt.get("signature_ok") is False:
        if key is None:  # the key check already says the key is missing; the link itself works
            return [Check(id="uplink", category="uplink", title=TITLE, passed=True,
                          detail=f"{done.broker}: signed receipt in {done.round_trip_ms:.0f} ms; the probe went "
                          "unsigned (no site key, see the key check)", figures=figures)]
        return _fail(f"{done.broker}: the province answered in {done.round_trip_ms:.0f} ms but could not verify "
                     f"this site's signature (key {key.key_id}): {receipt.get('reason')}. The site's signing key "
                     "does not match the key the province holds, so every result would be rejected",
                     "if the key in the data directory was re-created, restore the original from the site's backup; "
                     "if this is a new site or a new key, send the province the output of `examstation keys "
                     "export` to register", **figures, key_id=key.key_id)
    if receipt["status"] == "rejected":
        return _fail(f"{done.broker}: the province rejected the probe: {receipt.get('reason')}",
                     "give the reason above to the provincial exam centre; the software may be older than the "
                     "province's contract", **figures)
    held = f", key {key.key_id} verified by the province" if key is not None else ""
    return [Check(id="uplink", category="uplink", title=TITLE, passed=True,
                  detail=f"{done.broker}: signed receipt ({receipt['status']}) in {done.round_trip_ms:.0f} ms{held}",
                  figures={**figures, "key_id": key.key_id if key is not None else None})]
