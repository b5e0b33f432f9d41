"""Per-device health: what a proctor's dashboard and the acceptance check show for each device.

Kept as plain counters updated by the owning poller or reader; `snapshot()` gives an immutable
copy for the UI and the uplink's birth manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devices.ref import DeviceRef


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    device: DeviceRef
    online: bool | None
    polls_ok: int
    polls_failed: int
    errors: dict[str, int]
    consecutive_failures: int
    last_error: str
    last_latency_ms: float | None
    mean_latency_ms: float | None
    polls_late: int = 0


@dataclass(slots=True)
class DeviceHealth:
    """Online/offline state, error counts by kind and request latency of one device.

    `online` is None until the first poll finishes: "unknown" is not "offline".
    """

    device: DeviceRef
    online: bool | None = None
    polls_ok: int = 0
    polls_failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    consecutive_failures: int = 0
    last_error: str = ""
    last_latency_ms: float | None = None
    mean_latency_ms: float | None = None
    polls_late: int = 0
    """Polls that ended after the next one was due (a slow or silent device, or a busy event loop):
    the deadline misses /metrics reports."""

    def record_ok(self, latency_ms: float) -> bool:
        """Count a good poll; True when this brings the device (back) online."""
        self.polls_ok += 1
        self.consecutive_failures = 0
        self.last_latency_ms = latency_ms
        self.mean_latency_ms = (
            latency_ms if self.mean_latency_ms is None else 0.9 * self.mean_latency_ms + 0.1 * latency_ms
        )
        came_back = self.online is not True
        self.online = True
        return came_back

    def record_error(self, kind: str, message: str) -> None:
        """Count one failed request (a retry that then succeeds still counts here)."""
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.last_error = message

    def record_failed_poll(self) -> bool:
        """Count a poll that failed after its retries; True when this takes the device offline."""
        self.polls_failed += 1
        self.consecutive_failures += 1
        went_down = self.online is not False
        self.online = False
        return went_down

    def snapshot(self) -> HealthSnapshot:
        return HealthSnapshot(
            self.device, self.online, self.polls_ok, self.polls_failed, dict(self.errors),
            self.consecutive_failures, self.last_error, self.last_latency_ms, self.mean_latency_ms,
            self.polls_late,
        )
