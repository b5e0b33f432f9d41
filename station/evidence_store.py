"""Files of the evidence store written so that a crash leaves either the whole file or none.

The recorder does this for segments itself (devices.camera); the station's own evidence files
(check-in stills) use `durable_write`: a temporary name, fsync, rename, fsync of the directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def durable_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically and durably (a reader sees the old state or all of `data`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
