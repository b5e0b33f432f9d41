"""The rules behind /healthz and /metrics' access, on plain figures (the live behaviour is
tests/integration/test_metrics.py): each problem the verdict names, its limits, and who reads
/metrics from where."""

from __future__ import annotations

import dataclasses

import pytest

from devices.camera.camera_stats import CameraStatsSnapshot
from proctor_ui.routes.metrics import metrics_refusal
from station.health_check import HealthLimits, judge
from station.metrics import AlarmFigures, DeviceFigures, Figures


def _camera(connected: bool = True, age_s: float | None = 0.1) -> CameraStatsSnapshot:
    return CameraStatsSnapshot("A01/overview", 100, 2, 0, 0, age_s, 0, 0, connected)


FINE = Figures(site="GD-SZ-0101", software="examstation 0.1.0",
               devices=(DeviceFigures("A01", "bench", "modbus", True), DeviceFigures("A01", "manikin", "serial", None)),
               cameras=(("A01", "overview", _camera()),), cameras_configured=(("A01", "overview"),), recording=True,
               uplink_connected=False, uplink_down_s=60.0, outbox=None, alarms=AlarmFigures(), disk_free_bytes=50e9,
               disk_level=None, since_tick_s=0.1)


def test_a_fit_controller_has_no_problem_even_with_a_short_uplink_outage_and_a_device_not_heard_yet() -> None:
    verdict = judge(FINE)
    assert verdict.ok and verdict.document() == {"ok": True, "problems": []}


@pytest.mark.parametrize(("change", "what", "who", "detail"), [
    ({"since_tick_s": None}, "main_loop", "", "has not ticked yet"),
    ({"since_tick_s": 6.0}, "main_loop", "", "has not ticked for 6.0 s"),
    ({"devices": (DeviceFigures("A01", "bench", "modbus", False),)}, "device", "A01/bench", "offline"),
    ({"recording": False}, "camera", "A01/overview", "no evidence recording runs"),
    ({"cameras": ()}, "camera", "A01/overview", "not recorded by this controller"),
    ({"cameras": (("A01", "overview", _camera(connected=False)),)}, "camera", "A01/overview", "not connected"),
    ({"cameras": (("A01", "overview", _camera(age_s=30.0)),)}, "camera", "A01/overview", "no frame for 30 s"),
    ({"cameras": (("A01", "overview", _camera(age_s=None)),)}, "camera", "A01/overview", "no frame yet"),
    ({"uplink_down_s": 301.0}, "uplink", "", "for 301 s"),
    ({"disk_level": "disk.low", "disk_free_bytes": 12.5e9}, "disk", "", "disk.low: 12.5 GB free"),
])
def test_each_problem_is_named(change: dict[str, object], what: str, who: str, detail: str) -> None:
    verdict = judge(dataclasses.replace(FINE, **change))  # type: ignore[arg-type]
    assert not verdict.ok
    [problem] = verdict.problems
    assert (problem.what, problem.who) == (what, who) and detail in problem.detail


def test_limits_are_parameters() -> None:
    slow = dataclasses.replace(FINE, since_tick_s=6.0, uplink_down_s=400.0)
    assert judge(slow, HealthLimits(tick_s=10.0, uplink_down_s=600.0)).ok


@pytest.mark.parametrize(("host", "role", "authorization", "token", "refusal"), [
    ("127.0.0.1", None, None, None, None),  # a Prometheus on the box itself
    ("::1", None, None, None, None),
    ("192.0.2.7", None, None, None, 401),
    ("192.0.2.7", None, "Bearer s3cret", "s3cret", None),
    ("192.0.2.7", None, "bearer s3cret", "s3cret", None),
    ("192.0.2.7", None, "Bearer wrong", "s3cret", 401),
    ("192.0.2.7", None, "Bearer s3cret", None, 401),  # no token configured: no token is accepted
    ("192.0.2.7", None, "Basic czNjcmV0", "s3cret", 401),
    ("192.0.2.7", "admin", None, None, None),
    ("192.0.2.7", "proctor", None, None, 403),
    ("192.0.2.7", "examiner", "Bearer wrong", "s3cret", 403),
    ("testclient", None, None, None, 401),  # a name is not a loopback address
    (None, None, None, None, 401),
])
def test_who_reads_metrics(host: str | None, role: str | None, authorization: str | None, token: str | None,
                           refusal: int | None) -> None:
    assert metrics_refusal(host, role, authorization, token) == refusal
