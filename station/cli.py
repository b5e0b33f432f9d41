"""The `examstation` command line: the entry point that configures logging and wires components.

Every command shares one data directory (database, keys, evidence): `--data-dir`, else the
config's storage setting, else ./examstation-data. `run` and `demo` lock it for their lifetime
(`station.data_lock`), so a second controller on it is refused before it writes anything.

One error boundary (`main`): an error a user can fix ends with exit status 2 and its message;
anything else is a bug and ends with exit status 1 and one line saying so. The traceback is
printed only with -v.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import math
import sys
import traceback
from pathlib import Path

from devices.errors import DeviceError
from scoring.rubric_loader import RubricError
from scoring.text_file import TextFileError
from station.config import ConfigError, SiteConfig, load_site_config
from station.data_lock import DataDirError, lock_data_dir
from station.db import DatabaseError
from station.db.disk import free_space_todo, full_disk
from station.errors import UsageError
from station.services import ServiceError
from station.signing import SigningError
from station.site_check_command import add_parser as add_site_check_parser
from station.uplink.broker_link import UplinkConfigError
from station.uplink.contract import ContractError
from station.uplink.receipts import ReceiptKeyError

log = logging.getLogger("examstation")

DEFAULT_CONFIG = Path("examples/site.yaml")
DEFAULT_DATA_DIR = Path("./examstation-data")


USER_ERRORS = (ConfigError, ContractError, DatabaseError, DataDirError, DeviceError, ReceiptKeyError, RubricError,
               ServiceError, SigningError, TextFileError, UplinkConfigError, UsageError)
"""Our errors whose message says what to fix (each tree's documented contract): exit status 2, no traceback."""


def positive_seconds(text: str) -> float:
    """argparse type of --duration and --status-every: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: give a number of seconds above 0")
    return value


def port_number(text: str) -> int:
    """argparse type of --port: 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: give a port from 1 to 65535")
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
    s.add_argument("--write-config", type=Path, default=None, metavar="OUT",
                   help="write the site config resolved to the simulator's endpoints (with a broker, the simulated "
                        "province and an NTP server), to try `run` and `site-check` against the simulated hall")
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
    d.add_argument("--host", default="127.0.0.1", help="the proctor UI listens here (loopback only: plain HTTP)")
    d.add_argument("--port", type=int, default=8000, help="the proctor UI's port (0: any free port)")
    d.add_argument("--logins-file", type=Path, default=None, metavar="JSON",
                   help="also write the UI's URL and the demo logins to this file (mode 0600)")
    sc = sub.add_parser("scenarios", help="list the candidate scenarios with their expected outcome")
    sc.add_argument("--json", action="store_true", help="print a JSON list")
    run = cmd("run", "the controller against the hardware of the site config")
    run.add_argument("--duration", type=positive_seconds, default=None, help="stop after this many seconds")
    run.add_argument("--host", default="127.0.0.1",
                     help="address the proctor UI listens on (default 127.0.0.1; beyond loopback give --tls-cert "
                          "and --tls-key)")
    run.add_argument("--port", type=port_number, default=8000, help="port of the proctor UI (default 8000)")
    run.add_argument("--tls-cert", type=Path, default=None, metavar="PEM", help="the site's TLS certificate")
    run.add_argument("--tls-key", type=Path, default=None, metavar="PEM", help="the private key of --tls-cert")
    run.add_argument("--no-ui", action="store_true", help="do not serve the proctor UI")
    u = cmd("user", "the people who sign in to the proctor UI")
    u.add_argument("action", choices=["add", "list"], help="add NAME: a new user (asks for the password); list")
    u.add_argument("name", nargs="?", help="with add: the user name")
    u.add_argument("--role", choices=["admin", "examiner", "proctor"], default=None, help="with add: the user's role")
    u.add_argument("--stations", default="", metavar="A01,A02", help="with add: an examiner's stations")
    u.add_argument("--password-stdin", action="store_true",
                   help="with add: read the password from the first line of standard input (for scripts)")
    ci = cmd("candidates", "the candidate register")
    ci.add_argument("action", choices=["import"])
    ci.add_argument("file", type=Path, help="CSV: id_number,name,operation,batch[,photo_ref,attempt_number]")
    ci.add_argument("--encoding", default=None, metavar="ENC",
                    help="the file's encoding, e.g. gbk or utf-8 (default: detect UTF-8, with or without BOM, or GBK)")
    ci.add_argument("--dry-run", action="store_true",
                    help="check the whole file and show what would change; write nothing")
    r = cmd("replay", "re-score an attempt from its stored timeline; exit 1 unless it equals the stored sheet and "
                      "the signed result")
    r.add_argument("attempt_id")
    r.add_argument("--json", action="store_true", help="print the sheet as JSON")
    r.add_argument("--public-key", type=Path, default=None, metavar="PEM",
                   help="check the signature against this site public key (default: the key in the data directory)")
    db = cmd("db", "database maintenance")
    db.add_argument("action", choices=["upgrade"], help="upgrade: create or migrate the database")
    a = cmd("audit", "prove the stored records: chains, signatures, cross-checks, re-scores (docs/verify.md)")
    a.add_argument("action", choices=["verify"])
    a.add_argument("--public-key", type=Path, default=None, metavar="PEM",
                   help="the site public key the province registered (default: the key in the data directory)")
    a.add_argument("--province-copy", type=Path, default=None, metavar="RESULT.json",
                   help="a result document the province holds: the database must still hold it and all before it")
    o = cmd("outbox", "results waiting for the province's receipt (exit 1 when the province rejected one)")
    o.add_argument("action", nargs="?", choices=["status", "retry"], default="status",
                   help="status (default): backlog and undelivered results; retry RESULT_ID: send a rejected one again")
    o.add_argument("result_id", nargs="?", help="with retry: the result to queue again")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    o.add_argument("--all", action="store_true", help="list delivered results too (the latest 1000)")
    ex = cmd("export", "write a signed attempt's evidence bundle: result, key, timeline, sheet, rubric, video, "
                       "audit entries (docs/verify.md)")
    ex.add_argument("attempt_id")
    ex.add_argument("out", type=Path, metavar="OUT", help="a new directory for the bundle")
    v = sub.add_parser("verify", help="check an evidence bundle without the station: exit 0 when all holds, 1 naming "
                                      "the first thing that does not, 2 for a path that is not a bundle")
    v.add_argument("bundle", type=Path, metavar="OUT", help="the directory `examstation export` wrote")
    v.add_argument("--public-key", type=Path, default=None, metavar="PEM",
                   help="the site public key the province registered (default: the key inside the bundle, which "
                        "shows only that the bundle is whole)")
    k = cmd("keys", "the site's signing key")
    k.add_argument("action", choices=["init", "export"], help="init: create it; export: print the public key")
    add_site_check_parser(sub)
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
            if args.verbose:
                raise
            first = _first(err)
            print(f"examstation: internal error: {type(first).__name__}: {first}; "
                  "run again with -v for the traceback and report it", file=sys.stderr)
            return 1
        if args.verbose:
            traceback.print_exception(err)
        print(f"examstation: {message}", file=sys.stderr)
        return 2


def _first(err: BaseException) -> BaseException:
    """The error that happened. The controller runs its tasks in a TaskGroup, which wraps the error
    that stopped it in an ExceptionGroup: the first error inside is the one."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return err


def _explain(err: BaseException) -> str | None:
    """The message for an error the user can fix (None: a bug, reported as an internal error)."""
    err = _first(err)
    if isinstance(err, USER_ERRORS):
        return str(err)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        if not err.filename:
            return (f"a write failed: {err.strerror} (the disk is full); free space on the disk holding the data "
                    "directory (--data-dir), then start again")
        folder = Path(err.filename).parent
        disk = full_disk(folder, "no space") or f"the disk holding {folder} is full"
        return f"cannot write {err.filename}: {disk}; {free_space_todo(folder)}, then start again"
    if isinstance(err, OSError) and err.filename:  # a path the user gave, or one under --data-dir
        return _explain_path(err, Path(err.filename))
    return None


def _explain_path(err: OSError, path: Path) -> str:
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        file = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if file is not None:
            under = "" if file == path else f" (for {path})"
            return (f"{file} is a file where a directory is needed{under}; choose another --data-dir, "
                    "or move the file away")
    if isinstance(err, PermissionError):
        return f"cannot use {path}: permission denied; run as the user that owns it, or choose another path"
    if isinstance(err, FileNotFoundError):
        return f"{path} does not exist; check the path"
    if isinstance(err, IsADirectoryError):
        return f"{path} is a directory; give a file"
    return f"cannot use {path}: {err.strerror}"


def _dispatch(args: argparse.Namespace) -> int:
    from station import maintenance, record_commands

    if args.command == "verify":  # no config, no data directory: it runs where there is no station
        from station.bundle_verify import verify_bundle

        ok, text = verify_bundle(args.bundle, args.public_key)
        print(text)
        return 0 if ok else 1
    if args.command == "scenarios":
        from station import demo

        print(demo.describe_scenarios(as_json=args.json))
        return 0
    config_path = args.config or _default_config()
    config = load_site_config(config_path)
    data_dir = _data_dir(args, config)
    if args.command == "site-check":
        from station.site_check_command import site_check

        return site_check(args, config, config_path, data_dir)
    if args.command == "sim":
        from station import sim_hall  # the only places production code reaches the simulator: on request

        asyncio.run(sim_hall.run_sim(config, data_dir, print_endpoints=args.print_endpoints,
                                     duration_s=args.duration, write_config=args.write_config))
        return 0
    if args.command == "demo":
        return _demo(args, config, data_dir)
    if args.command == "run":
        return _run(args, config, data_dir)
    if args.command == "user":
        from station.user_commands import user_command

        return user_command(args, config, data_dir)
    if args.command == "candidates":
        print(maintenance.import_candidates(config, data_dir, args.file, encoding=args.encoding, dry_run=args.dry_run))
        return 0
    if args.command == "replay":
        ok, text = record_commands.replay(data_dir, args.attempt_id, args.json, args.public_key)
        print(text)
        return 0 if ok else 1
    if args.command == "db":
        print(maintenance.db_upgrade(data_dir))
        return 0
    if args.command == "audit":
        ok, text = record_commands.audit_verify(data_dir, args.public_key, args.province_copy)
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
    if args.command == "export":
        from station.evidence_bundle import export_bundle

        print(export_bundle(data_dir, args.attempt_id, args.out))
        return 0
    if args.command == "keys":
        print(maintenance.keys(data_dir, args.action))
        return 0
    raise AssertionError(args.command)


def _run(args: argparse.Namespace, config: SiteConfig, data_dir: Path) -> int:
    """`examstation run`: the UI's transport checked before anything starts, then the controller."""
    from station.controller import UiSettings, run_controller

    ui = None
    ui_errors: tuple[type[Exception], ...] = ()
    if not args.no_ui:
        from proctor_ui.server import UiServerError, check_transport

        ui = UiSettings(args.host, args.port, args.tls_cert, args.tls_key)
        ui_errors = (UiServerError,)
        try:
            check_transport(ui.host, ui.tls_cert, ui.tls_key)
        except UiServerError as err:
            raise UsageError(str(err)) from err
    with lock_data_dir(data_dir, "run"):
        try:
            asyncio.run(run_controller(config, data_dir, args.duration, ui=ui))
        except Exception as err:
            first = _first(err)
            if isinstance(first, ui_errors):  # a busy port or a bad certificate: the user fixes it
                raise UsageError(str(first)) from err
            raise
    return 0


def _demo(args: argparse.Namespace, config: SiteConfig, data_dir: Path) -> int:
    """`examstation demo`: the arguments checked, then the data directory locked, then the play."""
    from hardware_sim.province_contract import ContractError as ProvinceContractError
    from hardware_sim.province_contract import parse_broker_url
    from station import demo
    from station.scenario_runner import scenario_named

    names = [args.scenario] if args.scenario else args.exam.split(",") if args.exam else []
    try:
        for name in names:
            scenario_named(name.strip())
        if args.broker is not None:
            parse_broker_url(args.broker)  # the simulated province's rule: it connects there too
    except (LookupError, ProvinceContractError) as err:
        raise UsageError(str(err)) from err
    with lock_data_dir(data_dir, "demo"):
        if names:
            document, problem = asyncio.run(demo.run_scenarios(config, data_dir, names, args.broker))
            print(json.dumps(document, ensure_ascii=False, indent=None if args.json else 1))
            if problem:
                print(f"examstation demo: {problem}", file=sys.stderr)
                return 1
            return 0
        from proctor_ui.server import UiServerError

        try:
            asyncio.run(demo.run_demo(config, data_dir, args.duration, args.status_every, args.broker,
                                      host=args.host, port=args.port, logins_file=args.logins_file))
        except Exception as err:
            if isinstance(_first(err), UiServerError):  # a busy port, or beyond loopback: the user fixes it
                raise UsageError(str(_first(err))) from err
            raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
