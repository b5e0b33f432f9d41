"""The `examstation` command line: the entry point that configures logging and wires components.

Every command shares one data directory (database, keys, evidence): `--data-dir`, else the
config's storage setting, else ./examstation-data. `run` and `demo` lock it for their lifetime
(`station.data_lock`), so a second controller on it is refused before it writes anything.
Errors a user can fix end with exit status 2 and the message, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import math
import sys
from pathlib import Path

from station.config import ConfigError, SiteConfig, load_site_config
from station.data_lock import DataDirError, lock_data_dir
from station.db import DatabaseError
from station.db.disk import free_space_todo, full_disk
from station.services import ServiceError

log = logging.getLogger("examstation")

DEFAULT_CONFIG = Path("examples/site.yaml")
DEFAULT_DATA_DIR = Path("./examstation-data")


def positive_seconds(text: str) -> float:
    """argparse type of --duration and --status-every: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: give a number of seconds above 0")
    return value


def _default_config() -> Path:
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    return Path(__file__).resolve().parents[1] / DEFAULT_CONFIG


def _data_dir(args: argparse.Namespace, config: SiteConfig | None) -> Path:
    if getattr(args, "data_dir", None):
        return Path(args.data_dir)
    if config is not None:
        return Path(config.storage.data_dir)
    return DEFAULT_DATA_DIR


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="examstation", description="特种作业实操考试点 station controller")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", required=True)

    def cmd(name: str, text: str, config: bool = True) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=text)
        if config:
            c.add_argument("--config", type=Path, default=None, help="site config YAML (default examples/site.yaml)")
        c.add_argument("--data-dir", type=Path, default=None, help="database, keys and evidence directory")
        return c

    s = cmd("sim", "run only the hardware simulators of a site config")
    s.add_argument("--print-endpoints", action="store_true", help="print one JSON object per endpoint")
    s.add_argument("--duration", type=positive_seconds, default=None, help="stop after this many seconds")
    d = cmd("demo", "the whole site on this machine, against the simulator")
    d.add_argument("--duration", type=positive_seconds, default=None, help="stop after this many seconds")
    d.add_argument("--status-every", type=positive_seconds, default=5.0, help="seconds between status lines")
    d.add_argument("--scenario", default=None, help="play this scenario as one attempt (see `examstation scenarios`)")
    d.add_argument("--exam", default=None, help="S1,S2,S3,S4: a four-subject attempt, one scenario per subject")
    d.add_argument("--once", action="store_true", help="with --scenario/--exam: run it once, then exit")
    d.add_argument("--json", action="store_true", help="with --once: print the signed result document")
    d.add_argument("--broker", default=None, metavar="mqtt://HOST:PORT",
                   help="an external MQTT broker instead of the embedded one (the simulated province uses it too)")
    sc = sub.add_parser("scenarios", help="list the candidate scenarios with their expected outcome")
    sc.add_argument("--json", action="store_true", help="print a JSON list")
    run = cmd("run", "the controller against the hardware of the site config")
    run.add_argument("--duration", type=positive_seconds, default=None, help="stop after this many seconds")
    ci = cmd("candidates", "the candidate register")
    ci.add_argument("action", choices=["import"])
    ci.add_argument("file", type=Path, help="CSV: id_number,name,operation,batch[,photo_ref,attempt_number]")
    r = cmd("replay", "re-score an attempt from its stored timeline")
    r.add_argument("attempt_id")
    r.add_argument("--json", action="store_true", help="print the sheet as JSON")
    db = cmd("db", "database maintenance")
    db.add_argument("action", choices=["upgrade"], help="upgrade: create or migrate the database")
    a = cmd("audit", "check the audit hash chain, timelines, score sheets and results")
    a.add_argument("action", choices=["verify"])
    o = cmd("outbox", "results waiting for the province's receipt (exit 1 when the province rejected one)")
    o.add_argument("action", nargs="?", choices=["status", "retry"], default="status",
                   help="status (default): backlog and undelivered results; retry RESULT_ID: send a rejected one again")
    o.add_argument("result_id", nargs="?", help="with retry: the result to queue again")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    o.add_argument("--all", action="store_true", help="list delivered results too (the latest 1000)")
    k = cmd("keys", "the site's signing key")
    k.add_argument("action", choices=["init", "export"], help="init: create it; export: print the public key")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pymodbus logs every timeout as an error, paho every reset socket: our device layer and relay
    # report them once, with the fix. amqtt (the demo's broker) logs every connection.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("station.uplink.relay.paho").setLevel(logging.CRITICAL)
    for name in ("alembic", "amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `examstation scenarios | head`
        return 0
    except Exception as err:
        message = _explain(err)
        if message is None:
            raise
        print(f"examstation: {message}", file=sys.stderr)
        return 2


def _explain(err: BaseException) -> str | None:
    """The message for an error the user can fix (None: a bug, its traceback is the report).

    The controller runs its tasks in a TaskGroup, which wraps the error that stopped it in an
    ExceptionGroup: the first error inside is the one that happened, so that is the one reported.
    """
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    if isinstance(err, (ConfigError, DatabaseError, DataDirError, ServiceError)):
        return str(err)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        if not err.filename:
            return (f"a write failed: {err.strerror} (the disk is full); free space on the disk holding the data "
                    "directory (--data-dir), then start again")
        folder = Path(err.filename).parent
        disk = full_disk(folder, "no space") or f"the disk holding {folder} is full"
        return f"cannot write {err.filename}: {disk}; {free_space_todo(folder)}, then start again"
    return None


def _dispatch(args: argparse.Namespace) -> int:
    from station import maintenance

    if args.command == "scenarios":
        from station import demo

        print(demo.describe_scenarios(as_json=args.json))
        return 0
    config = load_site_config(args.config or _default_config())
    data_dir = _data_dir(args, config)
    if args.command in ("sim", "demo"):
        # The only place production code reaches the simulator: on request, never in `run`.
        from station import demo

        if args.command == "sim":
            asyncio.run(demo.run_sim(config, args.print_endpoints, args.duration))
            return 0
        with lock_data_dir(data_dir, "demo"):
            if args.scenario or args.exam:
                names = [args.scenario] if args.scenario else args.exam.split(",")
                document, problem = asyncio.run(demo.run_scenarios(config, data_dir, names, args.broker))
                print(json.dumps(document, ensure_ascii=False, indent=None if args.json else 1))
                if problem:
                    print(f"examstation demo: {problem}", file=sys.stderr)
                    return 1
                return 0
            asyncio.run(demo.run_demo(config, data_dir, args.duration, args.status_every, args.broker))
        return 0
    if args.command == "run":
        from station.controller import run_controller

        with lock_data_dir(data_dir, "run"):
            asyncio.run(run_controller(config, data_dir, args.duration))
        return 0
    if args.command == "candidates":
        print(maintenance.import_candidates(config, data_dir, args.file))
        return 0
    if args.command == "replay":
        print(maintenance.replay(config, data_dir, args.attempt_id, as_json=args.json))
        return 0
    if args.command == "db":
        print(maintenance.db_upgrade(data_dir))
        return 0
    if args.command == "audit":
        ok, text = maintenance.audit_verify(data_dir)
        print(text)
        return 0 if ok else 1
    if args.command == "outbox":
        if args.action == "retry":
            if not args.result_id:
                raise ServiceError("outbox retry needs the RESULT_ID; `examstation outbox` lists them")
            print(maintenance.outbox_retry(data_dir, args.result_id))
            return 0
        ok, text = maintenance.outbox_status(data_dir, args.json, args.all)
        print(text)
        return 0 if ok else 1
    if args.command == "keys":
        print(maintenance.keys(data_dir, args.action))
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    raise SystemExit(main())
