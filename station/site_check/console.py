"""The site check on a terminal: a progress display while the probes run, then the table of checks.

The progress goes to stderr, and only when stderr is a terminal and the output is not JSON, so a
script reading `--json` from stdout, or a log, gets no spinner codes. The table is for a person: the
verdict first, then one row per check, failures with their fix under them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from station.site_check.report import Check, Report


class ProgressDisplay:
    """A rich progress line per probe (spinning while it runs, its tally when done), on stderr.

    Use as a context manager around `run_site_check(..., progress=display)`; pass `enabled=False`
    (not a terminal, or `--json`) and it shows nothing."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self._console = Console(file=stream, stderr=stream is None)
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=self._console, transient=False)
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._progress.stop()

    def started(self, name: str) -> None:
        self._started[name] = time.monotonic()
        if self.enabled:
            self._tasks[name] = self._progress.add_task(f"checking {name} ...", total=1)

    def finished(self, name: str, checks: Sequence[Check]) -> None:
        if not self.enabled or name not in self._tasks:
            return
        failed = sum(not c.passed for c in checks)
        tally = f"[green]{len(checks)} passed[/]" if not failed else \
            f"[red]{failed} failed[/], {len(checks) - failed} passed"
        self._progress.update(self._tasks[name], completed=1, description=f"{escape(name)}: {tally}")


def print_table(report: Report, stream: TextIO | None = None) -> None:
    """The report as a table: verdict, then each check (status, id, what was found, the fix)."""
    console = Console(file=stream, highlight=False, soft_wrap=False)
    verdict = "[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
    console.print(f"{escape(report.site_name)} ({report.site_id}, {escape(report.province)}) site check "
                  f"{report.checked_at}: "
                  f"{verdict} - {len(report.checks) - len(report.failures)} passed, {len(report.failures)} failed")
    table = Table(show_lines=False, expand=True)
    table.add_column("", no_wrap=True, width=4)
    table.add_column("check", no_wrap=True, min_width=min(34, max((len(c.id) for c in report.checks), default=5)))
    table.add_column("found / fix", ratio=1)
    for c in report.checks:
        mark = "[green]ok[/]" if c.passed else "[red]FAIL[/]"
        text = escape(c.detail) if c.passed else f"{escape(c.detail)}\n[yellow]fix:[/] {escape(c.fix or '')}"
        table.add_row(mark, escape(c.id), text)
    console.print(table)
