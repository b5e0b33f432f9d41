"""The uplink's backlog as a site-wide alarm on the hall page: results queued and not delivered for
long, or the broker unreachable with results waiting. Judged from the relay's health (what
`examstation run` prints as its status line, which the alarm quotes), every `UPLINK_EVERY_S` by
the hall feed; None when the outbox could not be read: no news, neither an alarm nor its end.

The same health ends the relay's `uplink.rejected` alarm (raised when the province rejects a result,
station.uplink.settle) once no rejected result is left in the outbox: retried and delivered."""

from __future__ import annotations

from station.events import AlarmEvent
from station.uplink.broker_link import UplinkHealth
from station.uplink.settle import REJECTED_ALARM

UPLINK_EVERY_S = 10.0
UPLINK_BACKLOG = "uplink.backlog"
UPLINK_REJECTED = REJECTED_ALARM
UPLINK_TODO = ("检查考点网络与省平台的连接；结果保存在本机，连通后自动补传 / check the site's network link to the "
               "province; results are kept here and sent when it is back")
OLDEST_S = 600
"""A result undelivered this long is a backlog even while connected (the province not answering)."""


def backlog_alarm(health: UplinkHealth | None, raised: bool, now_utc_ns: int) -> AlarmEvent | None:
    """The alarm to raise or to clear after `health`, or None when nothing changes."""
    if health is None:
        return None
    oldest = health.oldest_queued_age_s
    bad = health.backlog.queued > 0 and (not health.connected or (oldest is not None and oldest > OLDEST_S))
    if bad and not raised:
        return AlarmEvent(UPLINK_BACKLOG, health.line(), UPLINK_TODO, None, now_utc_ns)
    if raised and not bad:
        return AlarmEvent(UPLINK_BACKLOG, health.line(), "", None, now_utc_ns, cleared=True)
    return None


def rejected_cleared(health: UplinkHealth | None, raised: bool, now_utc_ns: int) -> AlarmEvent | None:
    """The `uplink.rejected` alarm's end, once the outbox holds no rejected result; None while some
    are left or nothing is raised."""
    if not raised or health is None or health.backlog.failed:
        return None
    return AlarmEvent(UPLINK_REJECTED, "uplink: no rejected result is left in the outbox", "", None, now_utc_ns,
                      cleared=True)
