"""The UI wired to a running controller: `examstation run` and `examstation demo` both serve it so.

Why one function for both: the demo and the real controller must show the same UI built the same
way (one live hub over the site's cameras, the device hub's status, the relay's health); a second
copy of this wiring would drift. Usage:

    async with ui_for(services, config, data_dir, hub, relay=relay, host="127.0.0.1", port=8000) as url:
        print(f"proctor UI on {url}")
        ...                                   # the controller runs; the UI stops when the block ends

`config` is the site as its cameras are reached (the simulator's resolved config in a demo, as for
station.recording.Recording); the services' own config names the stations users are assigned to.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from devices.camera.contract import CameraSource
from devices.camera.live_hub import LiveHub, ReaderOf
from devices.camera.reader import CameraReader
from proctor_ui.app import create_app
from proctor_ui.context import UiContext
from proctor_ui.hall_state import HallFeed
from proctor_ui.server import check_transport, serving
from station.config import SiteConfig
from station.device_hub import DeviceHub, DeviceStatus
from station.recording import Recording
from station.services import StationServices
from station.uplink.broker_link import UplinkHealth
from station.uplink.peer_live import PeerLive
from station.uplink.relay import UplinkRelay
from station.users import UserBook

NO_USERS_HINT = ("no user can sign in yet: add one with `examstation user add NAME --role admin` "
                 "(it asks for the password), then examiners and proctors from the users page")
"""What `run` prints when the database has no users (the demo makes its own)."""


def live_hub_for(config: SiteConfig, *, linger_s: float = 5.0, readers: ReaderOf | None = None) -> LiveHub:
    """One live hub over every camera of `config`: the main stream, and the sub-stream where the
    camera has one (hall tiles use it). `readers`: the recorder's, so a recorded camera's station
    view reuses the recording's connection (`recorded_readers`)."""
    sources = [CameraSource(st.id, cam.id, cam.url) for st in config.stations for cam in st.cameras]
    subs = {(st.id, cam.id): cam.sub_url for st in config.stations for cam in st.cameras if cam.sub_url}
    return LiveHub(sources, subs, linger_s=linger_s, readers=readers)


def recorded_readers(services: StationServices) -> ReaderOf:
    """The reader of a camera while the services' recording runs (looked up when a view starts, so
    the recording may start after the UI)."""
    def reader(station: str, camera: str) -> CameraReader | None:
        recording = services.registration.recording
        return recording.recorder.reader(station, camera) if isinstance(recording, Recording) else None
    return reader


def user_book(services: StationServices) -> UserBook:
    """The users of the services' database, assignable to the site's stations."""
    return UserBook(services.db, services.clock, [st.id for st in services.config.stations])


def ui_context(services: StationServices, data_dir: Path, *, live: LiveHub | None = None,
               hub: DeviceHub | None = None, relay: UplinkRelay | None = None,
               secure_transport: bool = False, peers: PeerLive | None = None) -> UiContext:
    """The UiContext of a running controller (no serving): for tests and for callers with their own server."""
    status: Callable[[], list[DeviceStatus]] = hub.status if hub is not None else list
    health: Callable[[], UplinkHealth] | None = relay.health if relay is not None else None
    return UiContext(services=services, users=user_book(services), data_dir=data_dir, live=live,
                     device_status=status, uplink_health=health, secure_transport=secure_transport, hub=hub,
                     relay=relay, peers=peers)


@contextlib.asynccontextmanager
async def ui_for(services: StationServices, config: SiteConfig, data_dir: Path, hub: DeviceHub | None = None, *,
                 relay: UplinkRelay | None = None, host: str = "127.0.0.1", port: int = 8000,
                 tls_cert: Path | None = None, tls_key: Path | None = None,
                 live: bool = True, peers: PeerLive | None = None) -> AsyncIterator[str]:
    """Serve the UI for these services until the block ends; yields its URL (https://... with TLS).

    Raises proctor_ui.server.UiServerError before anything starts when the transport is refused
    (plain HTTP beyond loopback, a missing certificate or key) or the port is busy. `live=False`
    serves no live video (no camera connection is ever opened). `peers`: in a hall split over boxes,
    the other boxes' stations for the hall page.
    """
    check_transport(host, tls_cert, tls_key)
    async with contextlib.AsyncExitStack() as stack:
        hub_live = await stack.enter_async_context(
            live_hub_for(config, readers=recorded_readers(services))) if live else None
        ctx = ui_context(services, data_dir, live=hub_live, hub=hub, relay=relay,
                         secure_transport=tls_cert is not None, peers=peers)
        url = await stack.enter_async_context(serving(create_app(ctx), host, port, tls_cert, tls_key))
        feed = HallFeed.of(ctx)
        await feed.start()  # from now, not from the first page: alarms raised before anyone looks are shown
        stack.push_async_callback(feed.stop)
        yield url
