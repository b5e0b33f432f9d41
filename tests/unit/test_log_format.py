"""`--log-format json`: each record one JSON line with time, level, logger, message and, for an
alarm, its code, what and todo; the console's lines become records; the human format is untouched.
(The whole path, `run --log-format json` writing only JSON lines, is checked end to end in
tests/e2e/test_service_notify.py.)"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.events import AlarmEvent
from station.log_format import ALARM_LOGGER, CONSOLE_LOGGER, ConsoleRecords, JsonLineFormatter, report_alarm

STALLED = AlarmEvent("storage.stalled", "the station database has stored nothing for 12 s",
                     "check the disk holding the data directory", "A03", 0)


@contextlib.contextmanager
def json_lines(*loggers: str) -> Iterator[io.StringIO]:
    """What the JSON handler writes for these loggers (as `log_format.configure` sets it up on stderr)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLineFormatter())
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


def test_an_alarm_is_a_json_line_with_what_and_todo() -> None:
    with json_lines(ALARM_LOGGER, CONSOLE_LOGGER) as out, contextlib.redirect_stdout(ConsoleRecords()):
        report_alarm(STALLED)
        report_alarm(AlarmEvent("storage.stalled", "the station database stores records again", "", None, 0,
                                cleared=True))
    raised, cleared = (json.loads(line) for line in out.getvalue().splitlines())
    assert raised["level"] == "WARNING" and raised["logger"] == ALARM_LOGGER
    assert raised["message"] == ("ALARM at A03: the station database has stored nothing for 12 s; "
                                 "check the disk holding the data directory")
    assert raised["what"] == STALLED.what and raised["todo"] == STALLED.todo
    assert raised["code"] == "storage.stalled" and raised["station"] == "A03" and raised["cleared"] is False
    assert raised["time"].endswith("+00:00")
    assert cleared["level"] == "INFO" and cleared["cleared"] is True


def test_console_lines_become_records_whole_and_in_order() -> None:
    with json_lines(CONSOLE_LOGGER) as out, contextlib.redirect_stdout(ConsoleRecords()):
        print("  device A01/bench online", flush=True)
        print("examstation run: site GD-SZ-0101,", end=" ")
        print("6 stations 深圳", flush=True)
        print()
        print("without a newline", end="", flush=True)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["message"] for r in records] == ["device A01/bench online", "examstation run: site GD-SZ-0101, 6 "
                                               "stations 深圳", "without a newline"]
    assert {r["logger"] for r in records} == {CONSOLE_LOGGER} and {r["level"] for r in records} == {"INFO"}
    assert "深圳" in out.getvalue()  # journald and jq read UTF-8: no \\u escapes


def test_an_error_with_a_traceback_stays_one_line() -> None:
    log = logging.getLogger("station.test_log_format")
    with json_lines(log.name) as out:
        try:
            raise ValueError("bad value")
        except ValueError:
            log.exception("while doing %s", "something")
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "while doing something" and "ValueError: bad value" in record["exception"]
    assert "what" not in record


def test_without_json_an_alarm_is_the_console_line(capsys: pytest.CaptureFixture[str]) -> None:
    report_alarm(STALLED)
    assert capsys.readouterr().out == ("  ALARM at A03: the station database has stored nothing for 12 s; check the "
                                       "disk holding the data directory\n")


def test_a_failing_run_ends_with_a_json_line_too(tmp_path: Path) -> None:
    """The line a failing command ends with (here: no database yet) is what journald most needs
    kept readable by `jq`: it is a JSON record at ERROR, and nothing else is on stderr."""
    done = subprocess.run([sys.executable, "-m", "station.cli", "run", "--config", "examples/site.yaml", "--data-dir",
                           str(tmp_path), "--no-ui", "--log-format", "json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert records and records[-1]["level"] == "ERROR" and "examstation db upgrade" in records[-1]["message"]


def test_an_alarm_is_one_json_record_not_two() -> None:
    """Under `run` a module that raises an alarm also logs it ("ALARM ..." from its own logger, for
    commands without the alarm report); with JSON logs `jq` would then see every alarm twice, once
    without its code and todo. Only the alarm record, with its fields, is kept."""
    script = (
        "import logging\n"
        "from station.events import AlarmEvent\n"
        "from station import log_format\n"
        "log_format.configure('json', False, True)\n"
        "logging.getLogger('station.storage_watch').error('ALARM %s; %s', 'the station database has stored "
        "nothing for 12 s', 'check the disk holding the data directory')\n"
        "logging.getLogger('station.disk_watch').error('%s%s', 'ALARM ', 'disk: 3 GB free')\n"
        "log_format.report_alarm(AlarmEvent('storage.stalled', 'the station database has stored nothing for 12 s', "
        "'check the disk holding the data directory', 'A03', 0))\n"
        "logging.getLogger('station.other').error('a camera is gone')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(r["logger"], r.get("code")) for r in records] == [(ALARM_LOGGER, "storage.stalled"),
                                                               ("station.other", None)]
