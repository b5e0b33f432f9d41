"""Faults a simulated endpoint can be told to show, the way real rigs fail on site.

One `FaultPlan` per endpoint (a TCP proxy or a pty bridge in front of the device, plus the
device's own exception hook). Tests flip its fields while traffic flows; clearing a field ends
the fault. Kept as plain mutable state on purpose: it is a control panel, not a domain object.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class FaultPlan:
    """What the endpoint does to traffic right now. All off by default.

    A device that is switched off or unplugged is not a plan field but an action on the endpoint
    (`power_off()`/`power_on()`), because it changes what exists (a listening port, a tty path).
    """

    delay_s: float = 0.0
    """Hold each answer this long before sending it (a slow or overloaded device)."""
    no_answer: bool = False
    """Swallow requests: the device is powered but silent (wrong unit id, dead PLC, cut RX line)."""
    corrupt: bool = False
    """Garble answers: a flipped CRC on RTU, a broken MBAP header on TCP (noise, bad termination)."""
    exception_code: int = 0
    """Answer every request with this Modbus exception code (4 = server device failure)."""
    identity_code: int | None = None
    """Modbus: hold this product code in the identity register instead of the device's own (another kind
    of device at this address: a swapped IP address or unit id); see `modbus_server.answer_as`."""

    def clear(self) -> None:
        """End every fault."""
        self.delay_s = 0.0
        self.no_answer = False
        self.corrupt = False
        self.exception_code = 0
        self.identity_code = None
