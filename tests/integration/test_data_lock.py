"""One controller per data directory (issue 12): a second `demo` or `run` on the same `--data-dir`
is refused at once, naming the first one's pid, and the first keeps running; the lock goes with
the process that held it, however it ended (kill -9 included), so a restart is never blocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from station.data_lock import LOCK_FILENAME, DataDirError, DataDirInUseError, lock_data_dir

ROOT = Path(__file__).resolve().parents[2]


def examstation(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "station.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout_s)


class Demo(subprocess.Popen[str]):
    """The demo process, and what it printed on stderr once stopped (for the failure message)."""

    stderr_text = ""


@contextmanager
def running_demo(data: Path) -> Iterator[Demo]:
    """`examstation demo` on `data`, once it has printed its first line; stopped with Ctrl-C after,
    killed when it has not ended 30 s later (its stderr then holds station.slow_stop's report)."""
    proc = Demo([sys.executable, "-m", "station.cli", "demo", "--port", "0", "--data-dir", str(data),
                             "--duration", "60", "--status-every", "30"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first, f"the demo ended before its first line: {proc.communicate()[1][-2000:]}"
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.stderr_text = proc.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            stacks = _py_spy_dump(proc.pid)
            proc.kill()
            out, err = proc.communicate()
            proc.stderr_text = f"{err}\n--- stdout:\n{out[-3000:]}\n--- py-spy dump:\n{stacks}"


def _py_spy_dump(pid: int) -> str:
    """Every thread's stack of a process that will not stop (native frames too), where py-spy is
    installed (it is a developer's tool, not a requirement); the demo's own report
    (station.slow_stop) needs its event loop to turn."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return "(py-spy not installed)"
    done = subprocess.run([str(spy), "dump", "--pid", str(pid), "--locals"], capture_output=True, text=True,
                          timeout=60)
    return done.stdout + done.stderr


def test_a_second_lock_on_one_data_directory_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with lock_data_dir(data, "demo"):
        with pytest.raises(DataDirInUseError) as refused:
            lock_data_dir(data, "run")
        message = str(refused.value)
        assert f"{data} is in use by examstation pid {os.getpid()} (demo, started " in message, message
        assert message.endswith("stop it or use another --data-dir"), message
    with lock_data_dir(data, "run"):  # released on exit
        assert f'"pid": {os.getpid()}' in (data / LOCK_FILENAME).read_text()


def test_a_data_directory_that_is_a_file_is_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a directory")
    with pytest.raises(DataDirError, match=rf"--data-dir {data} is a file, not a directory; "):
        lock_data_dir(data, "demo")
    with pytest.raises(DataDirError, match=rf"--data-dir {data / 'sub'} lies under {data}, which is a file, not a "):
        lock_data_dir(data / "sub", "demo")
    assert data.read_text() == "not a directory"


def test_the_lock_goes_with_a_process_killed_by_sigkill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    holder = ("import sys, time\nfrom pathlib import Path\nfrom station.data_lock import lock_data_dir\n"
              "with lock_data_dir(Path(sys.argv[1]), 'demo'):\n    print('locked', flush=True)\n    time.sleep(60)\n")
    with subprocess.Popen([sys.executable, "-c", holder, str(data)], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        with pytest.raises(DataDirInUseError, match=f"pid {proc.pid} "):
            lock_data_dir(data, "run")
        proc.kill()
        proc.wait()
    with lock_data_dir(data, "run"):
        pass


@pytest.mark.timeout(180)
def test_a_second_controller_on_a_running_demos_data_directory_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_demo(data) as first:
        for second in (["demo", "--port", "0", "--duration", "5"],
                       ["demo", "--scenario", "k21-short-circuit", "--once"],
                       ["run", "--port", "0", "--duration", "5"]):
            started = time.monotonic()
            done = examstation(*second, "--data-dir", str(data))
            took = time.monotonic() - started
            assert done.returncode == 2, (second, done.returncode, done.stderr[-2000:])
            assert f"is in use by examstation pid {first.pid} " in done.stderr, done.stderr
            assert "Traceback" not in done.stderr, done.stderr
            assert took < 15, f"{second}: refused only after {took:.1f} s"
            assert first.poll() is None, "the first demo must keep running"
    assert first.returncode == 0, f"the first demo did not stop cleanly on Ctrl-C: {first.stderr_text[-20000:]}"
    again = examstation("demo", "--port", "0", "--data-dir", str(data), "--duration", "3", timeout_s=120)
    assert again.returncode == 0, again.stderr[-2000:]
