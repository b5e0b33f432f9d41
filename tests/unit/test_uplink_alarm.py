"""The hall's uplink backlog alarm, from the relay's own health lines (proctor_ui.uplink_alarm)."""

from __future__ import annotations

from proctor_ui.uplink_alarm import UPLINK_BACKLOG, UPLINK_REJECTED, backlog_alarm, rejected_cleared
from station.uplink.broker_link import UplinkHealth
from station.uplink.outbox import Backlog


def health(queued: int, connected: bool, oldest_s: float | None) -> UplinkHealth:
    return UplinkHealth("mqtts://province.example:8883", connected, None if connected else "connection refused",
                        Backlog(queued, 0, 7, None), oldest_s)


def test_results_waiting_while_the_broker_is_unreachable_raise_it_with_what_to_do() -> None:
    alarm = backlog_alarm(health(3, False, 40), raised=False, now_utc_ns=5)
    assert alarm is not None and alarm.code == UPLINK_BACKLOG and not alarm.cleared
    assert "3 queued" in alarm.what and "NOT CONNECTED" in alarm.what
    assert "检查考点网络" in alarm.todo and alarm.station is None and alarm.t_utc_ns == 5


def test_connected_but_a_result_older_than_ten_minutes_raises_it() -> None:
    assert backlog_alarm(health(1, True, 599), raised=False, now_utc_ns=0) is None
    alarm = backlog_alarm(health(1, True, 601), raised=False, now_utc_ns=0)
    assert alarm is not None and not alarm.cleared


def test_unreachable_with_nothing_waiting_is_no_backlog() -> None:
    assert backlog_alarm(health(0, False, None), raised=False, now_utc_ns=0) is None


def test_it_clears_once_delivered_and_is_not_raised_twice() -> None:
    assert backlog_alarm(health(3, False, 40), raised=True, now_utc_ns=0) is None
    cleared = backlog_alarm(health(0, True, None), raised=True, now_utc_ns=9)
    assert cleared is not None and cleared.cleared and cleared.code == UPLINK_BACKLOG
    assert backlog_alarm(health(0, True, None), raised=False, now_utc_ns=9) is None


def test_an_unreadable_outbox_line_raises_nothing_and_clears_nothing_it_cannot_judge() -> None:
    unreadable = None  # the outbox could not be read
    assert backlog_alarm(unreadable, raised=False, now_utc_ns=0) is None
    assert backlog_alarm(unreadable, raised=True, now_utc_ns=0) is None  # was: cleared, as if delivered


def test_the_rejected_alarm_ends_once_no_rejected_result_is_left() -> None:
    def line(failed: int) -> UplinkHealth:
        return UplinkHealth("mqtts://province.example:8883", True, None, Backlog(0, failed, 7, None), None)

    assert "1 REJECTED" in line(1).line()
    assert rejected_cleared(line(1), raised=True, now_utc_ns=3) is None, "still one in the outbox"
    cleared = rejected_cleared(line(0), raised=True, now_utc_ns=3)
    assert cleared is not None and cleared.cleared and cleared.code == UPLINK_REJECTED and cleared.station is None
    assert rejected_cleared(line(0), raised=False, now_utc_ns=3) is None
    assert rejected_cleared(None, raised=True, now_utc_ns=3) is None
