"""manikin-frame-v1 codec: the documented examples, and properties over arbitrary bytes.

The properties are the promises the reader relies on: every frame sent comes back whatever the
garbage around it and however the line splits it; a corrupted frame is never accepted; the
decoder never raises.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from devices.serial.manikin_codec import (
    FRAME_FIELDS,
    MAX_PAYLOAD_LEN,
    SOF,
    CompressionFrame,
    Frame,
    HandZone,
    HeartbeatFrame,
    StateFrame,
    VentilationFrame,
    crc16_modbus,
    encode,
    frame_fields,
    frame_name,
)
from devices.serial.manikin_decoder import FrameDecoder

DOC = Path(__file__).resolve().parents[2] / "docs" / "devices" / "manikin-protocol.md"

EXAMPLES: list[tuple[Frame, str]] = [
    (
        CompressionFrame(7, 123456, 523, 310, 412, True, HandZone.CORRECT),
        "AA 55 01 01 07 0C 40 E2 01 00 0B 02 36 01 9C 01 01 00 81 CF",
    ),
    (
        CompressionFrame(8, 123980, 468, 295, 380, False, HandZone.TOO_LOW),
        "AA 55 01 01 08 0C 4C E4 01 00 D4 01 27 01 7C 01 00 02 4A 94",
    ),
    (VentilationFrame(42, 140250, 550, 1200), "AA 55 01 02 2A 08 DA 23 02 00 26 02 B0 04 94 7B"),
    (StateFrame(3, 98000, True, 30, False, False), "AA 55 01 03 03 06 D0 7E 01 00 01 1E A8 D9"),
    (HeartbeatFrame(255, 3_600_000, 87, 1, 2, 0), "AA 55 01 04 FF 08 80 EE 36 00 57 01 02 00 9D EE"),
]

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
frames_st: st.SearchStrategy[Frame] = st.one_of(
    st.builds(CompressionFrame, u8, u32, u16, u16, u16, st.booleans(), st.sampled_from(HandZone)),
    st.builds(VentilationFrame, u8, u32, u16, u16),
    st.builds(StateFrame, u8, u32, st.booleans(), u8, st.booleans(), st.booleans()),
    st.builds(HeartbeatFrame, u8, u32, st.integers(0, 100), u8, u8, u8),
)


def feed_in_chunks(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[Frame]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    out: list[Frame] = []
    for a, b in itertools.pairwise(points):
        out += decoder.feed(data[a:b])
    return out


def fake_frame_passes_crc(stream: bytes, real_starts: set[int]) -> bool:
    """Whether a SOF that is not a real frame's start happens to carry a matching CRC-16.

    CRC-16 lets one random candidate in 65,536 through; for random line noise the header checks
    make that negligible, but the properties below plant valid-looking headers on purpose, so
    they exclude the (rare) streams where such a planted header collides.
    """
    at = stream.find(SOF)
    while at >= 0:
        length = stream[at + 5] if at + 5 < len(stream) else MAX_PAYLOAD_LEN + 1
        end = at + 8 + length
        if at not in real_starts and length <= MAX_PAYLOAD_LEN and end <= len(stream):
            crc = int.from_bytes(stream[end - 2 : end], "little")
            if crc16_modbus(stream[at + 2 : end - 2]) == crc:
                return True
        at = stream.find(SOF, at + 1)
    return False


def frame_starts(parts: list[tuple[bytes, Frame]]) -> set[int]:
    starts: set[int] = set()
    pos = 0
    for garbage, frame in parts:
        starts.add(pos + len(garbage))
        pos += len(garbage) + len(encode(frame))
    return starts


# -- documented examples --------------------------------------------------------------------------


def test_crc_test_vector() -> None:
    assert crc16_modbus(b"123456789") == 0x4B37


@pytest.mark.parametrize(("frame", "wire_hex"), EXAMPLES)
def test_documented_example(frame: Frame, wire_hex: str) -> None:
    wire = bytes.fromhex(wire_hex)
    assert encode(frame) == wire
    decoder = FrameDecoder()
    assert decoder.feed(wire) == [frame]
    assert decoder.frames_ok == 1
    assert wire_hex in DOC.read_text(encoding="utf-8"), "the example must appear verbatim in the doc"


def test_documented_resync_example_finds_the_frame_behind_a_fake_header() -> None:
    decoder = FrameDecoder()
    stream = bytes.fromhex("AA 55 01 01 00 0C AA 55 01 02 2A 08 DA 23 02 00 26 02 B0 04 94 7B")
    assert decoder.feed(stream) == [VentilationFrame(42, 140250, 550, 1200)]
    assert (decoder.crc_errors, decoder.garbage_bytes, decoder.resyncs) == (1, 6, 1)


def test_frame_fields_are_scalars_named_as_the_doc_says() -> None:
    compression = EXAMPLES[1][0]
    assert frame_name(compression) == "compression"
    assert frame_fields(compression) == {
        "depth_mm": 46.8, "recoil_ok": False, "hand_zone": "too_low", "duration_ms": 295,
        "peak_force_n": 380, "device_ms": 123980,
    }
    assert frame_fields(EXAMPLES[4][0])["firmware"] == "1.2.0"
    for frame, _ in EXAMPLES:
        fields = frame_fields(frame)
        assert tuple(fields) == FRAME_FIELDS[frame_name(frame)]
        assert all(isinstance(v, bool | int | float | str) for v in fields.values())


# -- receiver rules --------------------------------------------------------------------------------


def test_sequence_gaps_count_lost_frames_across_the_wrap() -> None:
    decoder = FrameDecoder()
    seqs = [254, 255, 0, 3, 4]  # 1 and 2 lost
    wire = b"".join(encode(VentilationFrame(s, 0, 500, 1000)) for s in seqs)
    assert len(decoder.feed(wire)) == 5
    assert decoder.lost_frames == 2
    decoder.reset()
    decoder.feed(encode(VentilationFrame(100, 0, 500, 1000)))
    assert decoder.lost_frames == 2, "after reset() the previous seq is forgotten"


def test_unknown_type_with_good_crc_is_skipped_whole() -> None:
    body = bytes((1, 0x7E, 0, 3, 0xAA, 0x55, 0x01))
    unknown = SOF + body + crc16_modbus(body).to_bytes(2, "little")
    decoder = FrameDecoder()
    good = EXAMPLES[2][0]
    assert decoder.feed(unknown + encode(good)) == [good]
    assert (decoder.unknown_frames, decoder.crc_errors, decoder.garbage_bytes) == (1, 0, 0)


def test_out_of_range_content_with_good_crc_is_malformed_not_a_frame() -> None:
    wire = bytearray(encode(EXAMPLES[0][0]))
    wire[17] = 9  # hand_zone 9 does not exist
    body = bytes(wire[2:-2])
    wire[-2:] = crc16_modbus(body).to_bytes(2, "little")
    decoder = FrameDecoder()
    assert decoder.feed(bytes(wire)) == []
    assert decoder.malformed_frames == 1


def test_length_above_bound_is_rejected_without_waiting() -> None:
    decoder = FrameDecoder()
    good = EXAMPLES[3][0]
    assert decoder.feed(bytes((0xAA, 0x55, 1, 0x7E, 0, MAX_PAYLOAD_LEN + 1)) + encode(good)) == [good]
    assert decoder.resyncs == 1 and decoder.pending_bytes == 0


def test_encode_rejects_values_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError, match="seq=256"):
        VentilationFrame(256, 0, 500, 1000)
    with pytest.raises(ValueError, match="battery_pct=101"):
        HeartbeatFrame(0, 0, 101, 1, 0, 0)
    with pytest.raises(ValueError, match="unknown hand zone"):
        HandZone.from_label("middle")


# -- properties -----------------------------------------------------------------------------------


@given(frames_st)
def test_round_trip(frame: Frame) -> None:
    assert FrameDecoder().feed(encode(frame)) == [frame]


@given(
    st.lists(st.tuples(st.binary(max_size=24), frames_st), max_size=8),
    st.binary(max_size=24),
    st.lists(st.integers(0, 10_000), max_size=12),
)
def test_garbage_and_split_points_yield_exactly_the_frames(
    pairs: list[tuple[bytes, Frame]], suffix: bytes, cuts: list[int]
) -> None:
    stream = b"".join(garbage + encode(frame) for garbage, frame in pairs) + suffix
    assume(not fake_frame_passes_crc(stream, frame_starts(pairs)))
    decoder = FrameDecoder()
    assert feed_in_chunks(decoder, stream, cuts) == [frame for _, frame in pairs]
    garbage_total = sum(len(g) for g, _ in pairs) + len(suffix)
    assert decoder.garbage_bytes + decoder.pending_bytes == garbage_total


@given(st.data())
def test_corrupted_frames_are_never_accepted(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 8))
    frames = [data.draw(frames_st) for _ in range(count)]
    # consecutive seqs so that lost frames can be checked too
    frames = [dataclasses.replace(f, seq=i) for i, f in enumerate(frames)]
    corrupted = data.draw(st.sets(st.integers(0, count - 1), min_size=1))
    wires = [bytearray(encode(f)) for f in frames]
    for i in corrupted:
        # a burst of one or two bytes: CRC-16 detects every burst of 16 bits or less
        width = data.draw(st.integers(1, 2))
        at = data.draw(st.integers(0, len(wires[i]) - width))
        for k in range(width):
            wires[i][at + k] ^= data.draw(st.integers(1 if k == 0 else 0, 0xFF))
    decoder = FrameDecoder()
    got = feed_in_chunks(decoder, b"".join(wires), data.draw(st.lists(st.integers(0, 500), max_size=6)))
    assert got == [f for i, f in enumerate(frames) if i not in corrupted]
    good = [i for i in range(count) if i not in corrupted]
    if good:  # only gaps between two received frames are visible
        assert decoder.lost_frames == good[-1] - good[0] + 1 - len(good)


@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=10))
def test_arbitrary_bytes_never_raise_and_only_literal_frames_come_out(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    for frame in feed_in_chunks(decoder, data, cuts):
        assert encode(frame) in data
    assert decoder.pending_bytes <= 8 + MAX_PAYLOAD_LEN


@given(st.lists(frames_st, min_size=1, max_size=5), st.integers(0, 10_000))
def test_valid_frames_inside_noise_made_of_sof_bytes(frames: list[Frame], seed: int) -> None:
    noise = (SOF + bytes((1, 1, seed & 0xFF, 12))) * 3 + b"\xaa"
    pairs = [(noise, f) for f in frames]
    stream = b"".join(noise + encode(f) for f in frames)
    assume(not fake_frame_passes_crc(stream, frame_starts(pairs)))
    assert FrameDecoder().feed(stream) == frames
