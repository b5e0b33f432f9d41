"""A simulated RS-485 line that takes the wire's real time: for benchmarks of bus efficiency.

`PtyBridge` is the fault-injecting line the tests use; its timing rides on the event loop, whose
epoll timeouts round up to whole milliseconds. This line runs in its own thread on `select()`
(microsecond timeouts) and models the wire as the Modbus RTU spec describes it:

- a frame occupies the line for 11 bits a character (start, 8 data, parity or second stop, stop);
- the receiver knows a frame has ended after 3.5 characters of silence, so a request reaches the
  device 3.5 characters after its last byte, and the line stays silent that long after any frame;
- a master that decodes an answer by its length has it at the answer's last byte, and may send
  its next request once the 3.5-character silence has passed.

So the best a master can do per transaction is request + 3.5 + answer + 3.5 characters, the
`rtu_limit_tps` of bench/modbus_poll.py. Run as a program it also starts the simulated device:
`python -m hardware_sim.wire_line --profile weld-sim --unit 1 --baud 115200` prints one JSON line
`{"path": ...}` (the port the controller opens) and serves until its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import logging
import math
import os
import select
import sys
import threading
import time
import tty
from collections.abc import Callable

from devices.modbus.register_codec import Value
from devices.profile import ModbusProfile, load_profile
from hardware_sim.modbus_server import SimModbusServer, SimulatedDevice
from hardware_sim.models.welding import WeldSimModel
from hardware_sim.rtu_responder import RtuResponder

BITS_PER_CHAR = 11
SPIN_S = 0.0002


class WireLine:
    """Two pty pairs joined by a thread that charges every frame its time on the wire."""

    def __init__(self, baudrate: int, responder: Callable[[bytes], bytes | None] | None = None) -> None:
        self.char_s = BITS_PER_CHAR / baudrate
        self.responder = responder
        """When set, requests are answered on the line by this ideal device (zero turnaround)
        instead of being passed to the device pty."""
        self._pairs = [os.openpty(), os.openpty()]
        for _, slave in self._pairs:
            tty.setraw(slave)
        self.device_path = os.ttyname(self._pairs[0][1])
        self.controller_path = os.ttyname(self._pairs[1][1])
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="wire-line", daemon=True)
        self.frames = 0
        self.device_turnaround_s = 0.0
        """Sum over answers of: request handed to the device -> its answer back on the line."""
        self.master_turnaround_s = 0.0
        """Sum over requests of: answer handed to the master -> its next request on the line."""
        self.late_s = 0.0
        """Sum of how late deliveries went out against their scheduled time (thread wake-up)."""

    def __enter__(self) -> WireLine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=2)
        for fd in (self._stop_r, self._stop_w, *(fd for pair in self._pairs for fd in pair)):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        device_master, controller_master = self._pairs[0][0], self._pairs[1][0]
        line_free_at = 0.0
        pending: list[tuple[float, int, int, bytes]] = []  # (deliver at, seq, fd, data)
        seq = 0
        last_delivery: dict[int, float] = {}
        while True:
            now = time.perf_counter()
            while pending and pending[0][0] <= now:
                due, _, fd, data = heapq.heappop(pending)
                if fd == device_master and self.responder is not None:
                    answer = self.responder(data)
                    if answer:  # it goes on the wire the moment the request has arrived
                        start = max(due, line_free_at)
                        end = start + len(answer) * self.char_s
                        line_free_at = end + 3.5 * self.char_s
                        self.frames += 1
                        heapq.heappush(pending, (end, seq, controller_master, answer))
                        seq += 1
                    continue
                with contextlib.suppress(OSError):
                    os.write(fd, data)
                delivered = time.perf_counter()
                self.late_s += delivered - due
                last_delivery[fd] = delivered
            # select() wakes ~0.1 ms late; wake early and spin the last stretch so frames go out on
            # time (this thread exists only for benchmarks; the spin is short and bounded)
            timeout = max(0.0, pending[0][0] - now - SPIN_S) if pending else None
            ready, _, _ = select.select([device_master, controller_master, self._stop_r], [], [], timeout)
            if self._stop_r in ready:
                return
            if not ready and pending:
                while time.perf_counter() < pending[0][0]:
                    pass
                continue
            now = time.perf_counter()
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                start = max(now, line_free_at)
                end = start + len(data) * self.char_s
                line_free_at = end + 3.5 * self.char_s
                self.frames += 1
                if fd == controller_master and controller_master in last_delivery:
                    self.master_turnaround_s += now - last_delivery.pop(controller_master)
                if fd == device_master and device_master in last_delivery:
                    self.device_turnaround_s += now - last_delivery.pop(device_master)
                if fd == controller_master:  # request: the device sees it after the silence
                    heapq.heappush(pending, (line_free_at, seq, device_master, data))
                else:  # answer: the master decodes it by length at its last byte
                    heapq.heappush(pending, (end, seq, controller_master, data))
                seq += 1


async def _serve(profile_name: str, unit: int, baudrate: int, ideal: bool) -> None:
    profile = load_profile(profile_name)
    if not isinstance(profile, ModbusProfile) or profile_name != "weld-sim":
        raise SystemExit("wire_line serves the weld-sim profile (the 50 Hz device that loads a bus most)")
    torch = WeldSimModel("co2")
    torch.trigger = True
    model = _Weaving(torch)
    responder = RtuResponder(unit, profile, model) if ideal else None
    with WireLine(baudrate, responder) as line:
        async with contextlib.AsyncExitStack() as stack:
            if not ideal:
                server = SimModbusServer([SimulatedDevice(unit, profile, model)], serial_path=line.device_path)
                await stack.enter_async_context(server)
            print(json.dumps({"path": line.controller_path}), flush=True)
            loop = asyncio.get_running_loop()
            stdin_closed = asyncio.Event()
            loop.add_reader(sys.stdin.fileno(), stdin_closed.set)
            await stdin_closed.wait()
            loop.remove_reader(sys.stdin.fileno())
        answers = max(1, line.frames // 2)
        print(json.dumps({"frames": line.frames, "device_turnaround_ms": line.device_turnaround_s / answers * 1e3,
                          "master_turnaround_ms": line.master_turnaround_s / answers * 1e3,
                          "late_ms_per_frame": line.late_s / max(1, line.frames) * 1e3}), flush=True)


class _Weaving:
    """The torch weaves and drifts, so every poll reads changing values (the honest worst case)."""

    def __init__(self, torch: WeldSimModel) -> None:
        self.torch = torch
        self.t = 0.0

    def tick(self, dt_s: float) -> None:
        self.t += dt_s
        t = self.torch.torch
        t.position_offset_mm = 1.2 * math.sin(2 * math.pi * 1.5 * self.t)
        t.travel_speed_mm_s = 6.0 + 0.8 * math.sin(2 * math.pi * 0.3 * self.t)
        t.work_angle_deg = 90 + 6 * math.sin(2 * math.pi * 0.7 * self.t)
        t.ctwd_mm = 12 + 2 * math.sin(2 * math.pi * 0.5 * self.t)
        self.torch.tick(dt_s)

    def values(self) -> dict[str, Value]:
        return self.torch.values()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--profile", default="weld-sim")
    p.add_argument("--unit", type=int, default=1)
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--ideal", action="store_true", help="answer on the line with zero turnaround (RtuResponder)")
    args = p.parse_args(argv)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(_serve(args.profile, args.unit, args.baud, args.ideal))


if __name__ == "__main__":
    main()
