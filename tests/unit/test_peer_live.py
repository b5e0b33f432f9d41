"""The other boxes' stations on this box's hall (station.uplink.peer_live, proctor_ui.hall_peers):
which live messages are taken, and the tile each makes: its box, its item's clock gone on since the
message, its devices, and stale (not frozen) once its box goes quiet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proctor_ui.hall_peers import peer_snapshot
from station.config import SiteConfig, load_site_config
from station.uplink.peer_live import PeerLive
from tests.box_kit import example_raw, split, write


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def site(tmp_path: Path) -> SiteConfig:
    return load_site_config(write(split(example_raw()), tmp_path / "site.yaml"))


def live(station: str, box: str | None = "B", **over: object) -> bytes:
    doc: dict[str, object] = {"schema": "examstation/live/v1", "site": "GD-SZ-0101", "station": station,
                              "at": "2026-11-28T01:10:00.123Z", "attempt_id": "019a1b2c-3d4e-7f00-8a1b-2c3d4e5f6a7b",
                              "state": "running", "item": "K11", "remaining_s": 600.0,
                              "devices": {"weldsim": True, "power": False, "cabinet": True}}
    if box is not None:
        doc["box"] = box
    doc.update(over)
    return json.dumps(doc).encode()


def title(operation: str, code: str) -> str:
    return f"{operation[:2]} {code}"


def test_box_a_takes_box_b_stations_only(site: SiteConfig) -> None:
    clock = Clock()
    peers = PeerLive(site.for_box("A"), clock=clock)
    assert peers.client_id == "examstation-GD-SZ-0101-A-hall"
    assert sorted(peers.remote) == ["W01", "W02"] and peers.remote["W01"].name == "二号机"
    heard: list[str] = []
    peers.listen(heard.append)
    assert peers.take("examstation/v1/GD-SZ-0101/W01/live", live("W01")) == "W01"
    assert peers.take("examstation/v1/GD-SZ-0101/A01/live", live("A01", "A")) is None  # its own: shown first-hand
    assert peers.take("examstation/v1/OTHER-SITE/W01/live", live("W01")) is None
    assert heard == ["W01"] and peers.ignored == 0
    w01 = peers.heard("W01")
    assert w01 is not None and w01.doc["item"] == "K11" and peers.age_s(w01) == 0.0


def test_messages_that_do_not_fit_are_dropped_and_counted(site: SiteConfig) -> None:
    peers = PeerLive(site.for_box("A"), clock=Clock())
    assert peers.take("examstation/v1/GD-SZ-0101/W01/live", b"{not json") is None
    assert peers.take("examstation/v1/GD-SZ-0101/W01/live", live("W01", remaining_s=-1)) is None  # off the schema
    assert peers.take("examstation/v1/GD-SZ-0101/W02/live", live("W01")) is None  # names another station
    assert peers.take("examstation/v1/GD-SZ-0101/W02/live", live("W02", box="A")) is None  # the config says B
    assert peers.ignored == 4 and peers.heard("W01") is None and peers.heard("W02") is None
    # a box of an older version sends no `box` member: the config's owner is taken on trust
    assert peers.take("examstation/v1/GD-SZ-0101/W02/live", live("W02", box=None)) == "W02"


def test_a_remote_tile_runs_its_clock_on_and_turns_stale(site: SiteConfig) -> None:
    clock = Clock()
    part = site.for_box("A")
    peers = PeerLive(part, clock=clock)
    assert peers.stale_after_s == 15.0  # 3 periods of the split hall's default 5 s live heartbeat
    w01 = site.station("W01")
    box = peers.remote["W01"]
    never = peer_snapshot(w01, box, None, None, peers.stale_after_s, title)
    assert never["remote"] == {"heard_s": None, "stale": True} and never["state"] == "idle"
    assert never["alarms"][0]["code"] == "box.stale" and "二号机（B）尚无" in never["alarms"][0]["what"]
    assert {d["online"] for d in never["devices"]} == {None}

    peers.take("examstation/v1/GD-SZ-0101/W01/live", live("W01"))
    clock.now += 4.0
    heard = peers.heard("W01")
    assert heard is not None
    snap = peer_snapshot(w01, box, heard, peers.age_s(heard), peers.stale_after_s, title)
    assert snap["box"] == {"id": "B", "name": "二号机", "ui_url": "http://127.0.0.1:8102", "own": False}
    assert snap["state"] == "running" and snap["remote"] == {"heard_s": 4.0, "stale": False}
    assert snap["item"]["code"] == "K11" and snap["item"]["title"] == "熔化 K11"
    assert snap["item"]["time_left_s"] == 596.0 and not snap["item"]["paused"]
    assert snap["candidate"] is None and snap["cameras"] == [] and snap["total"] is None
    by_name = {d["name"]: d["online"] for d in snap["devices"]}
    assert by_name["power"] is False and by_name["weldsim"] is True
    assert [a["code"] for a in snap["alarms"]] == ["device.lost"]

    paused = peers.take("examstation/v1/GD-SZ-0101/W01/live", live("W01", state="paused"))
    assert paused == "W01"
    clock.now += 10.0
    heard = peers.heard("W01")
    assert heard is not None
    snap = peer_snapshot(w01, box, heard, peers.age_s(heard), peers.stale_after_s, title)
    assert snap["item"]["paused"] and snap["item"]["time_left_s"] == 600.0  # a paused clock stands still

    clock.now += 6.0  # 16 s since its box last spoke: more than three periods
    stale = peer_snapshot(w01, box, heard, peers.age_s(heard), peers.stale_after_s, title)
    assert stale["remote"] == {"heard_s": 16.0, "stale": True}
    assert stale["state"] == "idle" and stale["item"] is None  # not the last state, frozen as if live
    assert "已 16 秒没有本考位的实时数据" in stale["alarms"][0]["what"]


def test_peer_live_is_only_for_a_box(site: SiteConfig) -> None:
    with pytest.raises(ValueError, match="for_box"):
        PeerLive(site)
