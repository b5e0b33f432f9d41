"""CPU, memory and machine figures from /proc, shared by the benchmarks that measure a process they
started (bench/site.py, bench/site_sim.py, bench/live_fanout.py). Run from bench/ (scripts there
have it on sys.path)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def cpu_times_s(pid: int, *, children_ended: bool = False) -> tuple[float, float]:
    """(user, system) CPU seconds of every thread of `pid`, from /proc/PID/stat (fields 14-15; with
    `children_ended`, 16-17 added: its children that ended and were waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    user, system = int(fields[11]), int(fields[12])
    if children_ended:
        user, system = user + int(fields[13]), system + int(fields[14])
    return user / hz, system / hz


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of every thread of `pid`."""
    return sum(cpu_times_s(pid))


def cpu_with_ended_children_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and of its children that ended (a controller's ffprobe)."""
    return sum(cpu_times_s(pid, children_ended=True))


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> dict[str, Any]:
    """The machine a figure was measured on, for the report."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"cpus": os.cpu_count(), "cpu_model": model, "ram_gib": round(mem / 1024 / 1024, 1),
            "python": sys.version.split()[0], "kernel": os.uname().release, "date": time.strftime("%Y-%m-%d")}
