"""The uplink's backlog as a site-wide alarm on the hall page: results queued and not delivered for
long, or the broker unreachable with results waiting. Read from the relay's health line (the same
line `examstation run` prints in its status), every `UPLINK_EVERY_S` by the hall feed.

The same line ends the relay's `uplink.rejected` alarm (raised when the province rejects a result,
station.uplink.settle) once no rejected result is left in the outbox: retried and delivered."""

from __future__ import annotations

import re

from station.events import AlarmEvent
from station.uplink.settle import REJECTED_ALARM

UPLINK_EVERY_S = 10.0
UPLINK_BACKLOG = "uplink.backlog"
UPLINK_REJECTED = REJECTED_ALARM
UPLINK_TODO = ("检查考点网络与省平台的连接；结果保存在本机，连通后自动补传 / check the site's network link to the "
               "province; results are kept here and sent when it is back")
OLDEST_S = 600
"""A result undelivered this long is a backlog even while connected (the province not answering)."""


def backlog_alarm(line: str, raised: bool, now_utc_ns: int) -> AlarmEvent | None:
    """The alarm to raise or to clear after the health `line`, or None when nothing changes."""
    queued = re.search(r"(\d+) queued", line)
    if queued is None:  # the outbox could not be read: no news, neither a backlog nor its end
        return None
    oldest = re.search(r"oldest (\d+) s", line)
    waiting = int(queued.group(1)) > 0
    bad = waiting and ("NOT CONNECTED" in line or (oldest is not None and int(oldest.group(1)) > OLDEST_S))
    if bad and not raised:
        return AlarmEvent(UPLINK_BACKLOG, line, UPLINK_TODO, None, now_utc_ns)
    if raised and not bad:
        return AlarmEvent(UPLINK_BACKLOG, line, "", None, now_utc_ns, cleared=True)
    return None


def rejected_cleared(line: str, raised: bool, now_utc_ns: int) -> AlarmEvent | None:
    """The `uplink.rejected` alarm's end, once the outbox holds no rejected result (the relay's
    health line names them as `N REJECTED`); None while some are left or nothing is raised."""
    if not raised or re.search(r"\d+ queued", line) is None or "REJECTED" in line:
        return None
    return AlarmEvent(UPLINK_REJECTED, "uplink: no rejected result is left in the outbox", "", None, now_utc_ns,
                      cleared=True)
