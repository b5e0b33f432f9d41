"""Evidence recording for `run` and `demo`: the recorder, its index, the links to attempts, the disk.

One object the controller enters once (`async with Recording(...)`), which
- first recovers what a killed process left (`.part` files: readable frames kept as a recovered
  segment, the rest a gap) and indexes it, so nothing half-written is ever listed as final;
- starts the recorder (devices.camera.recorder: a reader and a writer thread per camera) reporting
  to the evidence index (station.evidence_index), which stores each segment with its audit entry;
- hooks the check-in (a still per camera; a refusal at the disk's critical mark) and the sign-off
  (the post-roll wait and the links, station.evidence_link) into the services;
- runs the disk watch and the retention policy as tasks (`run()`).
Leaving it stops the recorder (the open segments are finished as final ones) and then the index.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import TracebackType
from typing import Self

from devices.camera.contract import CameraSource
from devices.camera.recorder import Recorder
from devices.camera.recovery import recover_partials
from station.config import SiteConfig
from station.disk_watch import DiskWatch
from station.evidence_index import EvidenceIndex
from station.evidence_link import EvidenceLinker
from station.evidence_retention import run_retention
from station.services import StationServices

log = logging.getLogger(__name__)


def evidence_root(data_dir: Path) -> Path:
    """Where the segments live: `{data_dir}/evidence/{station}/{camera}/{date}/{segment_id}.mkv`."""
    return data_dir / "evidence"


class Recording:
    def __init__(self, services: StationServices, data_dir: Path, config: SiteConfig | None = None) -> None:
        """`config`: the site as the cameras are reached (the simulator's resolved config in a demo);
        the services' own config by default."""
        self.services = services
        self.config = config or services.config
        self.data_dir = data_dir
        self.index = EvidenceIndex(services.db, data_dir, services.events)
        self.linker = EvidenceLinker(services.db, data_dir, self.config, self.index, services.clock)
        self.disk = DiskWatch(data_dir, self.config.storage, services.events, services.clock.utc_ns,
                              self.index.bytes_per_s)
        sources = [CameraSource(st.id, cam.id, cam.url) for st in self.config.stations for cam in st.cameras]
        self.recorder = Recorder(sources, evidence_root(data_dir), self.index,
                                 segment_s=self.config.recording.segment_s)

    async def __aenter__(self) -> Self:
        root = evidence_root(self.data_dir)
        root.mkdir(parents=True, exist_ok=True)
        self.index.start()
        recovered = await asyncio.to_thread(recover_partials, root, self.recorder.clock_run)
        if recovered:
            kept = sum(1 for seg, _ in recovered if seg is not None)
            print(f"examstation: {len(recovered)} segment(s) were being written when the controller stopped; "
                  f"{kept} kept with their readable frames, the rest recorded as video gaps", flush=True)
        self.index.index_recovered(recovered)
        await asyncio.to_thread(self.disk.check)
        await asyncio.to_thread(self.recorder.start)
        self.services.registration.recording = self
        self.services.sign_off.evidence = self.linker
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.services.registration.recording = None
        self.services.sign_off.evidence = None
        try:
            await asyncio.to_thread(self.recorder.stop)
        finally:
            await asyncio.to_thread(self.linker.join)
            await asyncio.to_thread(self.index.stop)

    async def run(self) -> None:
        """The disk watch and the retention policy, until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.disk.run(), name="disk watch")
            group.create_task(run_retention(self.services.db, self.data_dir, self.config.recording,
                                            self.services.clock.utc_ns), name="evidence retention")

    # -- CheckInHooks ----------------------------------------------------------------------------

    def refusal(self) -> str | None:
        return self.disk.refusal()

    def checked_in(self, attempt_id: str, station: str) -> None:
        self.linker.checked_in(attempt_id, station)
