"""An ideal Modbus RTU device for bus-efficiency benchmarks: it answers at once, on the line.

A pymodbus server behind a pty takes 0.3 ms or so to answer, which no theoretical wire limit
includes; measuring the master against the wire limit needs a device whose turnaround is zero, as
the limit assumes. This responder builds correct RTU answers (function codes 1-4, CRC-16/MODBUS)
from a device model and its profile, with the same register codec the controller decodes with;
`WireLine` calls it when a request has fully arrived. Not used by the tests' site simulator, which
keeps pymodbus servers.
"""

from __future__ import annotations

import struct
import time

from devices.modbus.block_plan import FUNCTION_CODE
from devices.modbus.register_codec import encode_point
from devices.profile import ModbusProfile
from devices.serial.manikin_codec import crc16_modbus
from hardware_sim.models.base import DeviceModel


class RtuResponder:
    """Answers read requests for one unit id from `model`'s current values."""

    def __init__(self, unit: int, profile: ModbusProfile, model: DeviceModel) -> None:
        self.unit = unit
        self.profile = profile
        self.model = model
        self._last = time.perf_counter()
        self.requests = 0

    def _image(self) -> dict[tuple[int, int], int]:
        now = time.perf_counter()
        self.model.tick(now - self._last)
        self._last = now
        values = self.model.values()
        image: dict[tuple[int, int], int] = {}
        for p in self.profile.points:
            fc = FUNCTION_CODE[p.table]
            current = image.get((fc, p.address), 0)
            for i, word in enumerate(encode_point(p, values[p.signal], current)):
                image[(fc, p.address + i)] = word
        return image

    def __call__(self, frame: bytes) -> bytes | None:
        """The answer to one request frame, or None (not for us, bad CRC: a real slave stays silent)."""
        if len(frame) != 8 or frame[0] != self.unit:
            return None
        if crc16_modbus(frame[:6]) != int.from_bytes(frame[6:8], "little"):
            return None
        fc = frame[1]
        start, count = struct.unpack(">HH", frame[2:6])
        self.requests += 1
        image = self._image()
        if fc in (1, 2):
            bits = [image.get((fc, start + i), 0) for i in range(count)]
            data = bytes(sum(1 << j for j, b in enumerate(bits[k:k + 8]) if b) for k in range(0, count, 8))
        elif fc in (3, 4):
            data = b"".join(struct.pack(">H", image.get((fc, start + i), 0)) for i in range(count))
        else:
            body = bytes([self.unit, fc | 0x80, 1])
            return body + crc16_modbus(body).to_bytes(2, "little")
        body = bytes([self.unit, fc, len(data)]) + data
        return body + crc16_modbus(body).to_bytes(2, "little")
