"""One controller per data directory: an exclusive lock on DATA_DIR/examstation.lock.

Two controllers on one database would each take the other's open attempts for ones a stopped run
left behind, and close them. `run` and `demo` therefore lock the data directory before they write
anything, for as long as the process lives; a second one is refused with the first one's pid.

The lock is `flock(2)`, not a pid file alone: the kernel drops it when its process ends, however
it ends (kill -9, a power cut), so a stale file never blocks a restart. The file's content (pid,
start time, command) is only what the refusal quotes; it is written after the lock is taken and
emptied before it is let go. The file itself is never deleted: a process that has it open would
otherwise lock an orphaned inode while a new one locks a new file. The descriptor is not
inherited by child processes (a broker or a simulator), so they cannot keep the lock alive.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

LOCK_FILENAME = "examstation.lock"
"""The lock file's name inside the data directory (`--data-dir`)."""


class DataDirError(Exception):
    """The data directory cannot be used; the message names it and says what to do."""


class DataDirInUseError(DataDirError):
    """Another examstation process holds the data directory's lock."""


class DataDirLock:
    """The held lock of one data directory; `release()` (or leaving `with`) lets it go."""

    def __init__(self, data_dir: Path, fd: int) -> None:
        self.data_dir = data_dir
        self._fd: int | None = fd

    def release(self) -> None:
        """Empty the file and close it, which drops the lock. Idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # while still held: after the close the next owner may have written
        finally:
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def lock_data_dir(data_dir: Path, command: str) -> DataDirLock:
    """Create `data_dir` if needed and take its lock for `command` ("run", "demo").

    Raises DataDirInUseError naming the holder's pid when another process has it (at once, never
    waits), DataDirError when `data_dir` cannot be a directory or the lock file cannot be made.
    """
    path = data_dir / LOCK_FILENAME
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except (FileExistsError, NotADirectoryError) as err:
        file = next((p for p in (data_dir, *data_dir.parents) if p.exists() and not p.is_dir()), data_dir)
        where = "is a file" if file == data_dir else f"lies under {file}, which is a file"
        raise DataDirError(f"--data-dir {data_dir} {where}, not a directory; choose another --data-dir, "
                           "or move the file away") from err
    except PermissionError as err:
        raise DataDirError(f"cannot create {err.filename or path}: permission denied; run as the user that owns "
                           f"{data_dir}, or choose another --data-dir") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        holder = _holder(fd)
        os.close(fd)
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise DataDirError(f"cannot lock {path}: {err.strerror}; the data directory must be on a local disk "
                               "(flock)") from err
        raise DataDirInUseError(f"data directory {data_dir} is in use by {holder}; "
                                "stop it or use another --data-dir") from None
    try:
        record = {"pid": os.getpid(), "command": command, "started": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    except OSError as err:  # a full disk: named with the file, so the message names the disk
        os.close(fd)
        raise OSError(err.errno, err.strerror, str(path)) from err
    except BaseException:
        os.close(fd)
        raise
    return DataDirLock(data_dir, fd)


def _holder(fd: int) -> str:
    """'examstation pid N (COMMAND, started T)' from the lock file, as far as its holder has written it."""
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode())
        return f"examstation pid {int(record['pid'])} ({record['command']}, started {record['started']})"
    except (OSError, ValueError, KeyError, TypeError):  # the holder has taken the lock, not yet written it
        return "another examstation process (it has not written its pid yet)"
