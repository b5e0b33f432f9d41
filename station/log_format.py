"""How `examstation` writes its logs: the human format on a console, JSON lines for journald.

Under systemd (`--log-format json`, as `examstation install-service` writes the unit) each log
record is one JSON object on stderr: time, level, logger, message, and for an alarm its code, what
happened, what to do and the station, so `journalctl -u examstation -o cat | jq` can select and
read them. The controller also tells a person at the console what happens (devices online, status,
alarms) with plain lines on stdout; journald would interleave those with the JSON and break `jq`,
so in that mode stdout is turned into records of the `examstation.console` logger as well (a
command whose stdout is its output, `demo --scenario`, keeps it), and so is anything written to
stderr outside logging (the error line a failing command ends with, a traceback) at ERROR.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
import sys
import threading
from typing import Any

from station.events import AlarmEvent

HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("human", "json")
CONSOLE_LOGGER = "examstation.console"
ALARM_LOGGER = "examstation.alarm"
ALARM_FIELDS = ("code", "what", "todo", "station", "cleared")
"""Attributes an alarm's record carries (logging's `extra=`), written as fields of its JSON line."""


def add_option(parser: argparse.ArgumentParser) -> None:
    """`--log-format` of `run` and `demo`."""
    parser.add_argument("--log-format", choices=FORMATS, default="human",
                        help="json: one JSON object per log line on stderr (time, level, logger, message, an alarm's "
                             "what/todo), the console lines included, for journald (default: human)")


class JsonLineFormatter(logging.Formatter):
    """One record as one line of JSON (non-ASCII kept as is: station names and messages are Chinese)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ALARM_FIELDS:
            if hasattr(record, field):
                doc[field] = getattr(record, field)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class AlarmEchoFilter(logging.Filter):
    """Drops a module's own "ALARM ..." record where the alarm report writes it with its fields.

    A module that raises an alarm publishes an AlarmEvent and also logs "ALARM what; todo" from its
    own logger, so commands that run no alarm report (`examstation outbox`) still say it. Under
    `run` and the demo hall every AlarmEvent reaches `report_alarm`, which writes the alarm record
    with its code and todo; the module's line would be the same alarm a second time, without them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == ALARM_LOGGER or record.levelno < logging.ERROR:
            return True
        return not record.getMessage().startswith("ALARM ")


class ConsoleRecords(io.TextIOBase):
    """A stdout (or stderr) whose every line becomes a record of `examstation.console` (INFO, or
    `level`; blank lines dropped). Lines may come from several threads: a lock keeps each whole."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__()
        self._log = logging.getLogger(CONSOLE_LOGGER)
        self._level = level
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if line.strip():
                self._log.log(self._level, "%s", line.strip())
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        if line.strip():
            self._log.log(self._level, "%s", line.strip())


def configure(log_format: str, verbose: bool, console_to_log: bool) -> None:
    """The entry point's logging setup. `console_to_log`: with the JSON format, stdout's lines
    become records too (for `run` and the demo hall, not for a command that prints its output);
    stderr's always do, the handler writing to the real stderr."""
    level = logging.DEBUG if verbose else logging.WARNING
    if log_format != "json":
        logging.basicConfig(level=level, format=HUMAN_FORMAT)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    logging.basicConfig(level=level, handlers=[handler])
    if handler not in logging.getLogger().handlers:
        return  # logging was set up before (a test calling main in-process): leave its streams alone
    logging.getLogger(ALARM_LOGGER).setLevel(logging.INFO)  # a cleared alarm is INFO: journald keeps it
    logging.getLogger(CONSOLE_LOGGER).setLevel(logging.INFO)
    sys.stderr = ConsoleRecords(logging.ERROR)  # the handler above holds the real one
    if console_to_log:  # run and the demo hall: report_alarm writes every alarm
        sys.stdout = ConsoleRecords()
        handler.addFilter(AlarmEchoFilter())


def report_alarm(event: AlarmEvent) -> None:
    """An alarm for the console: a line a proctor reads, or, when stdout goes to the log (JSON for
    journald), a record with the alarm's fields (WARNING; INFO when it clears)."""
    where = f" at {event.station}" if event.station else ""
    if event.cleared:
        line = f"alarm cleared{where}: {event.what}"
    else:
        line = f"ALARM{where}: {event.what}" + (f"; {event.todo}" if event.todo else "")
    if not isinstance(sys.stdout, ConsoleRecords):
        print(f"  {line}", flush=True)
        return
    fields = {"code": event.code, "what": event.what, "todo": event.todo, "station": event.station,
              "cleared": event.cleared}
    logging.getLogger(ALARM_LOGGER).log(logging.INFO if event.cleared else logging.WARNING, "%s", line, extra=fields)
