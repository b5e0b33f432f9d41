"""Is the disk under the data directory full? One answer for every message that must say so.

SQLite reports a full disk in several ways ("database or disk is full", but also a bare "disk I/O
error" when it cannot even create the WAL index at open), and Python as `OSError(ENOSPC)`. The
administrator needs to hear "the disk holding /var/lib/examstation is full", not "check the file
and its permissions", so every place that reports a storage failure asks the disk itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

LOW_FREE_BYTES = 16 * 1024 * 1024
"""Below this much free space the disk counts as full: SQLite needs room for its WAL and journal
pages (a checkpoint alone can need several MB), so a few KB free is full in practice."""


def free_bytes(folder: Path) -> int | None:
    """Free bytes on the filesystem holding `folder` (None when it cannot be asked)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def full_disk(folder: Path, error: str = "") -> str | None:
    """'the disk holding FOLDER is full (N bytes free)' when it is, or when `error` (what SQLite or
    the OS said) says so; else None."""
    free = free_bytes(folder)
    low = free is not None and free < LOW_FREE_BYTES
    if not low and "full" not in error.lower() and "no space" not in error.lower():
        return None
    return f"the disk holding {folder} is full ({free if free is not None else '?'} bytes free)"


def free_space_todo(folder: Path) -> str:
    """What the administrator does about it."""
    return f"free space on the disk holding {folder} (old exports, logs, other programs' files)"
