"""The device layer's one exception tree.

Library errors (pymodbus, pyserial, OSError) are translated into these at one boundary, with
`raise ... from err`, and every message names the device, what was seen against what was
expected, and what a site administrator should do about it.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Anything that went wrong talking to a rig, manikin, simulator or camera."""


class DeviceConfigError(DeviceError):
    """A profile or device setting is wrong; nothing was sent on the wire."""


class DeviceTimeout(DeviceError):
    """The device did not answer in time (dead device, wrong unit id, broken cable, CRC errors)."""


class DeviceDisconnected(DeviceError):
    """The link itself is gone: TCP connection refused or reset, serial port vanished."""


class ProtocolError(DeviceError):
    """The device answered, but the answer is not acceptable (malformed, wrong length, bad CRC)."""


class DeviceExceptionResponse(ProtocolError):
    """A Modbus device answered with an exception code (illegal address, device failure...)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class DeviceUnreachable(DeviceDisconnected):
    """No link could be made (connection refused, port missing); retried only after backoff."""
