"""The camera check: every configured camera delivers what the site config says it is set to.

Why: a station is recorded or it cannot hold an exam, and the recorder stores the camera's stream as
it comes (no re-encoding), so what the camera sends is what the evidence is: its codec, size, rate
and keyframe interval (segments are cut at keyframes) are checked against the declared `codec`,
`resolution` and `fps` of each camera, and its bitrate is measured for the disk check's 3-year sizing.
A snapshot per camera shows the reader of the report what each station's camera sees.

Each camera gives one check, `camera:{station}/{camera}`, so a fault shows once with its own
reason and fix: missing (nothing answers, or 404), frozen (connected, no frames), or what differs
from the declaration. The sub-stream (`sub_url`, the hall's live tiles), when declared, must deliver
frames too; its findings are part of the same check. Every stream is sampled on its own thread
(`station.site_check.camera_sample`) at once, each under a time budget.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from station.config import Camera
from station.site_check.camera_sample import MAX_KEYFRAME_INTERVAL_S, StreamSample, sample_stream
from station.site_check.report import Check, CheckContext, Figure

CONNECT_TIMEOUT_S: Final = 5.0
STALL_S: Final = 2.0
"""No frame for this long is a frozen camera: cameras send 10-25 frames a second."""
FPS_TOLERANCE: Final = 0.10
_MARGIN_S: Final = 5.0

_FIX_MISSING: Final = ("check that the camera is powered and on the hall network (its PoE switch port), and that "
                       "its `url` in the site config (host, port, path) is the camera's main stream")
_FIX_FROZEN: Final = ("the camera answers but its video has stopped: power-cycle it (its PoE port or power "
                      "supply); if it freezes again, replace it")
_FIX_FAILED: Final = ("open the URL in VLC or ffprobe to see what the camera answers; check `url` and the "
                      "camera's user and password")
_FIX_KEYFRAMES: Final = (f"set the camera's I-frame interval (GOP) to at most {MAX_KEYFRAME_INTERVAL_S:g} s, e.g. "
                         "equal to its frame rate: recordings cut segments at keyframes")


def _budget_s(sample_s: float) -> float:
    """Longest a stream may take: connect, a stalled open and read, the sample, the wait for a keyframe."""
    return CONNECT_TIMEOUT_S + 2 * STALL_S + sample_s + MAX_KEYFRAME_INTERVAL_S + _MARGIN_S


async def _sample(pool: ThreadPoolExecutor, url: str, sample_s: float, *, snapshot: bool) -> StreamSample:
    """One stream on a pool thread; past its budget the thread is told to stop and the sample so far is used."""
    stop = threading.Event()
    future = asyncio.get_running_loop().run_in_executor(
        pool, lambda: sample_stream(url, sample_s, stop, connect_timeout_s=CONNECT_TIMEOUT_S, stall_s=STALL_S,
                                    snapshot=snapshot))
    try:
        async with asyncio.timeout(_budget_s(sample_s)):
            return await asyncio.shield(future)
    except TimeoutError:
        stop.set()
        got = await future  # it returns within STALL_S: every read is bounded by it
        if got.outcome != "ok":
            return got
        return StreamSample(url, "failed", f"{url} gave no complete sample within {_budget_s(sample_s):g} s "
                            f"({got.frames} frames)", frames=got.frames)
    finally:
        stop.set()


def _compare(cam: Camera, main: StreamSample) -> tuple[list[str], list[str], list[str]]:
    """What differs from the declaration (with fixes), and what was measured without one."""
    problems: list[str] = []
    fixes: list[str] = []
    undeclared: list[str] = []
    if cam.codec is None:
        undeclared.append("codec")
    elif main.codec != cam.codec:
        problems.append(f"the codec is {main.codec}, declared {cam.codec}")
        fixes.append(f"set the camera's main stream to {cam.codec.upper()} in its web settings, or correct "
                     "`codec` in the site config")
    if cam.resolution is None:
        undeclared.append("resolution")
    elif main.resolution != cam.resolution:
        problems.append(f"the resolution is {main.resolution or 'unknown'}, declared {cam.resolution}")
        fixes.append(f"set the camera's main stream to {cam.resolution} in its web settings, or correct "
                     "`resolution` in the site config")
    if cam.fps is None:
        undeclared.append("fps")
    elif main.fps is None or abs(main.fps - cam.fps) > FPS_TOLERANCE * cam.fps:
        measured = f"{main.fps:g} fps" if main.fps is not None else "not measurable"
        problems.append(f"the frame rate is {measured}, declared {cam.fps:g} fps (±{FPS_TOLERANCE:.0%} accepted)")
        fixes.append(f"set the camera's main stream to {cam.fps:g} fps in its web settings, or correct `fps` "
                     "in the site config")
    if main.keyframes == 0:
        problems.append(f"no keyframe in {main.sampled_s:g} s")
        fixes.append(_FIX_KEYFRAMES)
    elif main.keyframe_interval_s is None:
        problems.append(f"one keyframe in {main.sampled_s:g} s: the interval is over {MAX_KEYFRAME_INTERVAL_S:g} s")
        fixes.append(_FIX_KEYFRAMES)
    elif main.keyframe_interval_s > MAX_KEYFRAME_INTERVAL_S:
        problems.append(f"a keyframe every {main.keyframe_interval_s:g} s (at most {MAX_KEYFRAME_INTERVAL_S:g} s)")
        fixes.append(_FIX_KEYFRAMES)
    return problems, fixes, undeclared


def _figures(main: StreamSample, sub: StreamSample | None) -> dict[str, Figure]:
    figures: dict[str, Figure] = {
        "codec": main.codec, "resolution": main.resolution, "fps": main.fps,
        "keyframe_interval_s": main.keyframe_interval_s, "bitrate_kbps": main.bitrate_kbps,
        "frames": main.frames, "sample_s": main.sampled_s}
    if sub is not None:
        figures.update(sub_fps=sub.fps, sub_resolution=sub.resolution, sub_frames=sub.frames)
    return figures


def _verdict(station: str, cam: Camera, main: StreamSample, sub: StreamSample | None) -> Check:
    problems: list[str] = []
    fixes: list[str] = []
    found: list[str] = []
    if main.outcome == "missing":
        problems.append(f"missing: {main.reason}")
        fixes.append(_FIX_MISSING)
    elif main.outcome == "frozen":
        problems.append(f"frozen: {main.reason}")
        fixes.append(_FIX_FROZEN)
    elif main.outcome == "failed":
        problems.append(main.reason)
        fixes.append(_FIX_FAILED)
    else:
        problems, fixes, undeclared = _compare(cam, main)
        interval = f"a keyframe every {main.keyframe_interval_s:g} s" if main.keyframe_interval_s else "keyframes"
        found.append(f"{main.codec} {main.resolution} at {main.fps:g} fps, {interval}, {main.bitrate_kbps:g} kbit/s "
                     f"({main.frames} frames in {main.sampled_s:g} s)")
        if undeclared:
            found.append(f"{', '.join(undeclared)} not declared in the site config, so only measured")
    if sub is not None and sub.outcome != "ok":
        problems.append(f"sub-stream {sub.outcome}: {sub.reason}")
        if main.outcome == "ok":  # else the main stream's fix covers the camera as a whole
            fixes.append("the hall's live tiles use the sub-stream: check `sub_url` in the site config and the "
                         "camera's sub-stream settings")
    elif sub is not None:
        found.append(f"sub-stream {sub.resolution or 'of unknown size'} at {sub.fps or 0:g} fps")
    check_id, title = f"camera:{station}/{cam.id}", f"{station} camera {cam.id} delivers its declared stream"
    if problems:
        detail = "; ".join(problems) + (f" (measured: {'; '.join(found)})" if found else "")
        return Check(id=check_id, category="camera", title=title, passed=False, detail=detail,
                     fix="; ".join(dict.fromkeys(fixes)), station=station, subject=cam.id,
                     figures=_figures(main, sub))
    return Check(id=check_id, category="camera", title=title, passed=True, detail="; ".join(found),
                 station=station, subject=cam.id, figures=_figures(main, sub))


async def check_cameras(ctx: CheckContext) -> tuple[list[Check], dict[str, bytes]]:
    """One check per configured camera, and a JPEG snapshot keyed `{station}/{camera}` for each that gave one."""
    cameras = [(st.id, cam) for st in ctx.config.stations for cam in st.cameras]
    if not cameras:
        return [], {}
    streams = sum(2 if cam.sub_url else 1 for _, cam in cameras)
    # a thread per stream: the default pool (cores + 4) would sample a hall's cameras a few at a time
    pool = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="site-check-camera")
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [(station, cam,
                      group.create_task(_sample(pool, cam.url, ctx.sample_s, snapshot=True)),
                      group.create_task(_sample(pool, cam.sub_url, ctx.sample_s, snapshot=False))
                      if cam.sub_url else None)
                     for station, cam in cameras]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # each thread was told to stop; it ends within STALL_S
        raise
    pool.shutdown(wait=True)  # every sample has returned: the threads only exit
    checks: list[Check] = []
    snapshots: dict[str, bytes] = {}
    for station, cam, main_task, sub_task in tasks:
        main = main_task.result()
        checks.append(_verdict(station, cam, main, sub_task.result() if sub_task else None))
        if main.snapshot:
            snapshots[f"{station}/{cam.id}"] = main.snapshot
    return checks, snapshots
