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
import sys
import traceback
from pathlib import Path

from devices.errors import DeviceError
from scoring.rubric_loader import RubricError
from scoring.text_file import TextFileError
from station import log_format
from station.cli_parser import build_parser
from station.config import ConfigError, SiteConfig, load_site_config
from station.data_lock import DataDirError, lock_data_dir
from station.db import DatabaseError
from station.db.disk import free_space_todo, full_disk
from station.errors import UsageError
from station.services import ServiceError
from station.signing import SigningError
from station.uplink.broker_link import UplinkConfigError
from station.uplink.contract import ContractError
from station.uplink.receipts import ReceiptKeyError

log = logging.getLogger("examstation")

DEFAULT_CONFIG = Path("examples/site.yaml")
DEFAULT_DATA_DIR = Path("./examstation-data")


USER_ERRORS = (ConfigError, ContractError, DatabaseError, DataDirError, DeviceError, ReceiptKeyError, RubricError,
               ServiceError, SigningError, TextFileError, UplinkConfigError, UsageError)
"""Our errors whose message says what to fix (each tree's documented contract): exit status 2, no traceback."""


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # `run` and `demo` offer --log-format json, for journald; `demo --scenario/--exam` prints its result on stdout
    prints_result = bool(getattr(args, "scenario", None) or getattr(args, "exam", None))
    log_format.configure(getattr(args, "log_format", "human"), args.verbose, console_to_log=not prints_result)
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
    if args.command in ("run", "site-check"):  # a split hall: this machine's stations only
        config = config.for_box(args.box)
    data_dir = _data_dir(args, config)
    if args.command == "install-service":
        from station.install_service import install_service

        return install_service(args, config, config_path)
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
