"""What the proctor UI works with: the station's service layer and the live views, nothing else.

Routes reach the station only through this object (DESIGN.md: no SQL and no device calls in a
route). `create_app(ui)` takes one; `examstation run`, `examstation demo` and the tests build it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devices.camera.live_hub import LiveHub
from station.device_hub import DeviceHub, DeviceStatus
from station.services import StationServices
from station.uplink.broker_link import UplinkHealth
from station.uplink.peer_live import PeerLive
from station.uplink.relay import UplinkRelay
from station.users import UserBook


@dataclass
class UiContext:
    services: StationServices
    users: UserBook
    data_dir: Path
    """The data directory: evidence segments and stills are served from under it."""
    live: LiveHub | None = None
    """Live camera views; None where no camera is configured or watched (some tests)."""
    device_status: Callable[[], list[DeviceStatus]] = field(default=lambda: [])
    """Every device of the site now (the device hub's `status`)."""
    uplink_health: Callable[[], UplinkHealth] | None = None
    """The uplink's backlog and broker connection (blocking: it reads the outbox), when a relay runs."""
    secure_transport: bool = False
    """True when served over HTTPS; over plain HTTP only loopback is allowed (proctor_ui.server)."""
    hub: DeviceHub | None = None
    relay: UplinkRelay | None = None
    """The device hub and the uplink relay themselves, for /metrics and /healthz only (the figures they
    count); the pages use `device_status` and `uplink_health`."""
    peers: PeerLive | None = None
    """In a hall split over boxes: the other boxes' stations, from their live topics (the hall shows them)."""
