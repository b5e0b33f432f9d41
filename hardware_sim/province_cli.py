"""`python -m hardware_sim.province`: the simulated provincial server alone, against any broker.

For a provincial IT engineer trying the contract, or a demo on two machines: it receives results,
stores them in `--db`, answers with signed receipts and prints its counts every `--report-every`
seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
from pathlib import Path

import hardware_sim.province_key as ed25519
from hardware_sim.province import SIGN_RECEIPTS, ProvinceServer
from hardware_sim.province_contract import ASYNCAPI


async def _main(args: argparse.Namespace, keys: dict[str, str]) -> None:
    async with ProvinceServer(args.broker, keys=keys, db_url=args.db, client_id=args.client_id,
                              province_key=args.province_key, sign_receipts=args.sign_receipts,
                              contract=args.contract) as province:
        await province.connected.wait()
        print(f"province: receiving on {args.broker}", flush=True)
        signing = "receipts signed" if province.sign_receipts else "receipts NOT signed (--sign-receipts signs them)"
        if args.province_key is not None:
            print(f"province: {signing}; key {province.key_id}, public key (a site's uplink.province_key) in "
                  f"{ed25519.public_path(args.province_key)}", flush=True)
        else:
            print(f"province: {signing}; key {province.key_id} made for this run (--province-key PEM_PATH keeps one), "
                  f"public key (a site's uplink.province_key):\n{province.public_pem().strip()}", flush=True)
        while True:
            await asyncio.sleep(args.report_every)
            print(json.dumps({"stats": dataclasses.asdict(province.stats),
                              "missing": {s: province.missing(s)[:20] for s in keys}}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m hardware_sim.province",
                                description="The simulated provincial exam server.")
    p.add_argument("--broker", required=True, help="mqtt://HOST:PORT")
    p.add_argument("--key", action="append", default=[], help="SITE=PEM_FILE: a site's registered public key")
    p.add_argument("--db", default="sqlite://", help="SQLAlchemy URL where results are stored")
    p.add_argument("--client-id", default="province-sim")
    p.add_argument("--report-every", type=float, default=5.0)
    p.add_argument("--province-key", type=Path, metavar="PEM_PATH",
                   help="the province's Ed25519 private key that signs receipts, created when missing (its "
                        "public half is written beside it as NAME.pub.pem); a new key each run without it")
    p.add_argument("--sign-receipts", action=argparse.BooleanOptionalAction, default=SIGN_RECEIPTS,
                   help="sign every receipt message with the province's key")
    p.add_argument("--contract", type=Path, default=ASYNCAPI, metavar="ASYNCAPI_YAML",
                   help="the AsyncAPI document whose topics and schemas to follow (default: %(default)s)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    keys = {}
    for item in args.key:
        site, _, path = item.partition("=")
        keys[site] = Path(path).read_text(encoding="utf-8")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args, keys))
