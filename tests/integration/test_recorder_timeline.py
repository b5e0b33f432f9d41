"""The segment timestamps (`PacketTimeline`, pure): start at 0, never go backwards, one frame a step
where the stream's own timestamps are missing (FFmpeg 8's first RTSP packet) or jump."""

from __future__ import annotations

import itertools
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from devices.camera.packet_timeline import PacketTimeline

TB = Fraction(1, 90000)
FRAME_NS = 100_000_000


def _timeline() -> PacketTimeline:
    return PacketTimeline(TB, wall_clock=False, start_mono_ns=0, nominal_frame_ns=FRAME_NS)


def test_the_first_rtsp_packet_without_timestamps_is_kept_at_0_and_the_stream_continues_from_it() -> None:
    timeline = _timeline()
    stamped = [timeline.stamp(pts, dts, 0) for pts, dts in [(None, None), (9000, 9000), (18000, 18000)]]
    assert stamped == [(0, 0), (9000, 9000), (18000, 18000)]


def test_a_stream_starting_anywhere_is_rebased_to_0() -> None:
    timeline = _timeline()
    assert [timeline.stamp(t, t, 0)[1] for t in (7_000_000, 7_009_000, 7_018_000)] == [0, 9000, 18000]


def test_a_backwards_step_or_a_jump_becomes_one_frame_and_the_stream_goes_on_from_there() -> None:
    timeline = _timeline()
    got = [timeline.stamp(t, t, 0)[1] for t in (0, 9000, 4500, 13500, 9_000_000, 9_009_000)]
    assert got == [0, 9000, 18000, 27000, 36000, 45000]
    assert timeline.repaired == 2


def test_mjpeg_takes_its_times_from_arrival_not_from_the_demuxers_25_fps() -> None:
    timeline = PacketTimeline(Fraction(1, 1000), wall_clock=True, start_mono_ns=5_000_000_000, nominal_frame_ns=None)
    got = [timeline.stamp(i, i, 5_000_000_000 + i * 100_000_000)[0] for i in range(4)]
    assert got == [0, 100, 200, 300]
    assert timeline.step_ns == 100_000_000


@given(st.lists(st.one_of(st.none(), st.integers(-(2**33), 2**33)), min_size=1, max_size=60))
def test_whatever_the_stream_says_the_written_dts_start_at_0_and_always_rise(stream: list[int | None]) -> None:
    timeline = _timeline()
    dts = [timeline.stamp(t, t, 0)[1] for t in stream]
    assert dts[0] == 0
    assert all(b > a for a, b in itertools.pairwise(dts))
