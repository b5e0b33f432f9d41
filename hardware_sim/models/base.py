"""What every simulated device model offers the server that exposes it.

A model is plain Python state with a `tick(dt_s)` that advances its physics and `values()` that
reports its points by canonical signal name. It knows nothing about registers or sockets: the
server encodes values with the same register codec the controller decodes them with.
"""

from __future__ import annotations

from typing import Protocol

from devices.modbus.register_codec import Value


class DeviceModel(Protocol):
    """A simulated rig, trainer, cabinet or welding set."""

    def tick(self, dt_s: float) -> None:
        """Advance the device's own behaviour by `dt_s` seconds."""
        ...

    def values(self) -> dict[str, Value]:
        """Current value of every point, keyed by canonical signal name."""
        ...
