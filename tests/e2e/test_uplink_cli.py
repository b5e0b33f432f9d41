"""The uplink through the real command line, against a real mosquitto.

- `examstation demo --scenario NAME --once --json --broker mqtt://127.0.0.1:PORT`: a plain
  `mosquitto_sub` on `examstation/v1/+/+/result` receives the signed result, and the public key
  that `examstation keys export` prints verifies it (the issue's acceptance, word for word).
- `examstation run` killed with SIGKILL five times while it drains a backlog of signed results:
  every result reaches the province exactly once as far as the province's store is concerned
  (resends after each kill are absorbed as duplicates), seq gap-free, and the station's audit
  chain still verifies.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from hardware_sim.mosquitto import Mosquitto, mosquitto_binary
from hardware_sim.province import ProvinceServer
from hardware_sim.province_key import public_path
from station import audit
from station.db import open_database
from station.db.models import Attempt
from station.signing import verify
from tests.uplink_kit import (
    SITE_CONFIG,
    ResultFactory,
    outbox_states,
    province_key,
    site_config,
    station_database,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMSTATION = [sys.executable, "-m", "station.cli"]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXAMSTATION, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.mark.timeout(180)
async def test_demo_once_publishes_a_result_mosquitto_sub_receives_and_the_exported_key_verifies(
        tmp_path: Path) -> None:
    sub_bin = str(Path(mosquitto_binary()).parent.parent / "bin" / "mosquitto_sub")
    if not os.access(sub_bin, os.X_OK):
        sub_bin = "mosquitto_sub"
    data = tmp_path / "data"
    async with Mosquitto() as broker:
        sub = await asyncio.create_subprocess_exec(
            sub_bin, "-h", broker.host, "-p", str(broker.port), "-t", "examstation/v1/+/+/result", "-q", "1",
            "-C", "1", "-W", "150", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            await asyncio.sleep(0.5)  # the scenario itself runs ~10 s before anything is published
            demo = await asyncio.to_thread(cli, "demo", "--scenario", "k21-short-circuit", "--once", "--json",
                                           "--broker", broker.url, "--data-dir", str(data))
            assert demo.returncode == 0, demo.stderr
            printed = json.loads(demo.stdout)
            received_raw, err = await asyncio.wait_for(sub.communicate(), 30)
            assert sub.returncode == 0, err.decode()
        finally:
            if sub.returncode is None:
                sub.kill()
                await sub.wait()
    received = json.loads(received_raw)
    assert received == printed
    assert received["site"] == "GD-SZ-0101" and received["station"] == "A01"
    exported = cli("keys", "export", "--data-dir", str(data))
    assert exported.returncode == 0 and "BEGIN PUBLIC KEY" in exported.stdout
    assert verify(received, exported.stdout)
    tampered = dict(received, total=100.0)
    assert not verify(tampered, exported.stdout)
    status = cli("outbox", "--json", "--data-dir", str(data))
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["delivered"] == 1  # the simulated province's receipt came back


def _run_config(tmp_path: Path, broker_url: str) -> Path:
    """The example site with its uplink on the test broker, trusting the simulated province's key.
    Its devices do not exist here: the controller reports them offline and goes on; this test is
    about the results."""
    raw = yaml.safe_load(SITE_CONFIG.read_text(encoding="utf-8"))
    raw["uplink"] = {"broker_url": broker_url, "province_key": str(public_path(province_key()))}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _spawn_run(config: Path, data: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*EXAMSTATION, "run", "--port", "0", "--config", str(config), "--data-dir", str(data)],
                            cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.timeout(300)
async def test_controller_killed_during_publishing_loses_nothing(tmp_path: Path) -> None:
    n_results = 4500  # each run delivers 300 before its kill, and often several hundred more before it lands
    kills = 5
    data = tmp_path / "data"
    async with Mosquitto() as broker:
        config = site_config(broker.url)
        site = config.site.id
        with station_database(data, config) as (db, key):
            await asyncio.to_thread(ResultFactory(db, key).add, n_results - 1)
        cfg = _run_config(tmp_path, broker.url)
        async with ProvinceServer(broker.url, keys={site: key.public_pem()}, province_key=province_key(),
                                  db_url=f"sqlite:///{tmp_path / 'province.sqlite3'}") as province:
            await asyncio.wait_for(province.connected.wait(), 10)
            killed_at = []
            for _ in range(kills):
                before = province.stored(site)
                proc = _spawn_run(cfg, data)
                try:
                    # kill once this run has delivered a few hundred: mid-drain, results in flight
                    await wait_until(lambda b=before: province.stored(site) >= min(n_results, b + 300), 60, 0.005)
                finally:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                killed_at.append(province.stored(site))
            assert killed_at[-1] < n_results, f"the drain finished before the last kill: {killed_at}"
            proc = _spawn_run(cfg, data)
            try:
                await province.wait_stored(site, n_results, timeout_s=120)
                with open_database(data / "examstation.sqlite3") as db:
                    await wait_until(lambda: outbox_states(db) == {"delivered": n_results}, 60, 0.1)
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            assert province.missing(site) == []
            assert province.seqs(site) == set(range(1, n_results + 1))
            assert province.stats.stored == n_results  # every resend after a kill was absorbed, none stored twice
            assert province.stats.rejected == 0
    with open_database(data / "examstation.sqlite3") as db:
        report = audit.verify(db)
    assert report.ok, str(report)



@pytest.mark.timeout(150)
def test_make_demo_hall_delivers_results_through_the_embedded_broker(tmp_path: Path) -> None:
    """What `make demo` runs, for 45 s: candidates finish at several stations and each signed result
    reaches the simulated province through the embedded amqtt broker."""
    run = cli("demo", "--port", "0", "--duration", "45", "--status-every", "5", "--data-dir", str(tmp_path / "data"),
              timeout=140)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "embedded amqtt" in run.stdout
    last = [line for line in run.stdout.splitlines() if line.startswith("examstation demo: stopped")]
    assert last, run.stdout[-2000:]
    stored = int(last[0].split("the province stored ")[1].split()[0])
    assert stored >= 3, run.stdout[-2000:]
    status = json.loads(cli("outbox", "--json", "--all", "--data-dir", str(tmp_path / "data")).stdout)
    assert status["failed"] == 0
    # the province stored what the station saw receipted, plus receipts still in flight at the stop
    assert status["delivered"] >= 3 and status["delivered"] <= stored <= status["delivered"] + status["queued"]
    assert cli("audit", "verify", "--data-dir", str(tmp_path / "data")).returncode == 0

    # `make demo` again on the same data: the candidates the first run left mid-exam are closed (their
    # items ended interrupted, signed, sent), said so, and the hall plays on; it does not refuse to start.
    left = unfinished(tmp_path / "data")
    assert left, "the stop came mid-candidate at some station"
    again = cli("demo", "--port", "0", "--duration", "15", "--status-every", "5", "--data-dir", str(tmp_path / "data"),
                timeout=100)
    assert again.returncode == 0, again.stderr[-2000:]
    for attempt_id in left:
        assert f"attempt {attempt_id}" in again.stdout, again.stdout[-2000:]
    with open_database(tmp_path / "data" / "examstation.sqlite3") as db, db.read() as s:
        states = {row.attempt_id: row.state for row in s.execute(select(Attempt.attempt_id, Attempt.state))}
    assert {states[a] for a in left} <= {"signed", "queued", "delivered"}, {a: states[a] for a in left}
    assert cli("audit", "verify", "--data-dir", str(tmp_path / "data")).returncode == 0


def unfinished(data: Path) -> list[str]:
    with open_database(data / "examstation.sqlite3") as db, db.read() as s:
        return list(s.scalars(select(Attempt.attempt_id).where(
            Attempt.state.not_in(("signed", "queued", "delivered")))))
