"""One error boundary in the CLI (issue 12): every error of ours ends with its message and exit
status 2, a bug with one "internal error" line and exit status 1; a traceback only with -v.

Each case runs `python -m station.cli` as a user would and checks the exit status, the message on
stderr and that no traceback was printed; where a refusal must change nothing, that too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def examstation(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "station.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def refused(done: subprocess.CompletedProcess[str], status: int = 2) -> str:
    """The one error line of a command that failed cleanly with `status`."""
    assert done.returncode == status, (done.returncode, done.stdout[-1000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args", [["sim", "--duration", "-5"], ["demo", "--duration", "0"],
                                  ["demo", "--status-every", "-1"], ["run", "--duration", "nan"],
                                  ["run", "--duration", "soon"]])
def test_a_duration_that_is_not_above_zero_is_refused_by_the_parser(args: list[str]) -> None:
    line = refused(examstation(*args))
    assert line.startswith(f"examstation {args[0]}: error: argument {args[1]}: "), line
    assert "above 0" in line or "not a number of seconds" in line, line
