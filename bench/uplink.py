"""Uplink benchmark: how fast a backlog drains to receipts, and how long one result takes.

Run: `.venv/bin/python bench/uplink.py --json` (about a minute). The last stdout line is one JSON
object: {"results", "drain_per_s", "baseline_per_s", "ratio", "latency_p50_ms", "latency_p99_ms"}.

Setup: a real mosquitto on a free loopback port; the simulated province (hardware_sim.province,
SQLite in WAL+FULL, schema check and signature check of every result) in its own process, as a
real province is; the station's relay in this process.

- drain: `--results` signed results (default 10,000) sit queued in a fresh station database;
  the relay starts and the clock runs until the last receipt is recorded in the outbox
  (delivered, with its audit entry and the attempt's state). drain_per_s = results / that time.
- baseline: in the same run, against the same broker, a bare aiomqtt loop publishes the same
  documents at QoS 1, each awaited to its PUBACK (`for doc in docs: await client.publish(...)`),
  to a topic nobody receives: the cost of the transport alone, with no storage, no province and
  no receipts. It runs before and after the drain (the machine's load drifts); baseline_per_s is
  the mean of the two. ratio = drain_per_s / baseline_per_s.
- latency: one result at a time, `--latency-samples` times: from the commit that stores the
  signed result (the last examiner signature's transaction) until the relay has recorded its
  receipt. p50 and p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devices.clock import SystemClock  # noqa: E402
from hardware_sim.mosquitto import Mosquitto  # noqa: E402
from scoring.rubric_loader import rubric_for  # noqa: E402
from station.signing import SiteKey  # noqa: E402
from station.uplink import outbox  # noqa: E402
from station.uplink.contract import NO_DELAY  # noqa: E402
from station.uplink.relay import RelaySettings, UplinkRelay  # noqa: E402
from tests import uplink_kit as kit  # noqa: E402


def start_province(broker_url: str, site: str, pem_path: Path, db_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hardware_sim.province", "--broker", broker_url, "--key", f"{site}={pem_path}",
         "--province-key", str(kit.province_key()), "--sign-receipts",
         "--db", f"sqlite:///{db_path}", "--client-id", "province-bench", "--report-every", "3600"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


async def baseline(broker_url: str, docs: list[bytes]) -> float:
    host, port = broker_url.removeprefix("mqtt://").split(":")
    # the same socket options as the relay (TCP_NODELAY): the baseline is not handicapped by Nagle
    async with aiomqtt.Client(host, int(port), identifier="bench-baseline", socket_options=NO_DELAY) as client:
        t0 = time.perf_counter()
        for doc in docs:
            await client.publish("bench/baseline", doc, qos=1)
        return len(docs) / (time.perf_counter() - t0)


async def run(n: int, latency_samples: int, work: Path) -> dict[str, Any]:
    async with Mosquitto() as broker:
        config = kit.site_config(broker.url)
        site = config.site.id
        data = work / "station"
        key = SiteKey.load_or_create(data)  # kit.station_database() below reuses this key
        pem = work / "site.pem"
        pem.write_text(key.public_pem())
        province = start_province(broker.url, site, pem, work / "province.sqlite3")
        try:
            assert province.stdout is not None
            await asyncio.to_thread(province.stdout.readline)  # "province: receiving on ..."
            with kit.station_database(data, config) as (db, key):
                await asyncio.to_thread(kit.ResultFactory(db, key).add, n - 1)
                with db.read() as s:
                    from sqlalchemy import select

                    from station.db.models import ResultRow
                    docs = [d.encode() for d in s.execute(select(ResultRow.document)).scalars()]
                base_before = await baseline(broker.url, docs)

                rubrics = [rubric_for(st.operation) for st in config.stations[:1]]
                settings = RelaySettings(idle_poll_s=0.2)
                t0 = time.perf_counter()
                async with UplinkRelay(config, db, key_id=key.key_id, rubrics=rubrics, clock=SystemClock(),
                                       settings=settings) as relay:
                    await kit.wait_until(lambda: relay.stats.delivered >= n, timeout_s=600, every_s=0.01)
                    drain_s = time.perf_counter() - t0
                    assert kit.outbox_states(db) == {"delivered": n}, kit.outbox_states(db)

                    factory = kit.ResultFactory(db, key)
                    latencies = []
                    for _ in range(latency_samples):
                        before = relay.stats.delivered
                        t = time.perf_counter()
                        await asyncio.to_thread(factory.add, 1)
                        relay.wake()  # what a signature's ResultStateEvent(queued) does at a station
                        await kit.wait_until(lambda b=before: relay.stats.delivered > b, timeout_s=30, every_s=0.0005)
                        latencies.append((time.perf_counter() - t) * 1000)
                base_after = await baseline(broker.url, docs)
                backlog = outbox.backlog(db)
        finally:
            province.terminate()
            province.wait(10)
    latencies.sort()
    drain = n / drain_s
    base = (base_before + base_after) / 2
    return {
        "results": n, "drain_per_s": round(drain, 1), "baseline_per_s": round(base, 1),
        "ratio": round(drain / base, 3), "latency_p50_ms": round(statistics.median(latencies), 2),
        "latency_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "drain_s": round(drain_s, 2), "latency_samples": len(latencies), "delivered": backlog.delivered,
        "baseline_before_per_s": round(base_before, 1), "baseline_after_per_s": round(base_after, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=int, default=10_000)
    p.add_argument("--latency-samples", type=int, default=200)
    p.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="examstation-bench-uplink-") as tmp:
        figures = asyncio.run(run(args.results, args.latency_samples, Path(tmp)))
    if not args.json:
        for k, v in figures.items():
            print(f"{k:>16}: {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
