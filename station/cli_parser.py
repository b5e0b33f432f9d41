"""The grammar of the `examstation` command line: every command, its options and their help.

Kept apart from `station.cli` (which loads the config, wires components and turns errors into exit
statuses) so the list of what a user can type reads in one place.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from station import log_format
from station.install_service import add_parser as add_install_service_parser
from station.site_check_command import add_parser as add_site_check_parser


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


def add_box_option(parser: argparse.ArgumentParser) -> None:
    """--box: which box of a hall split over several (the site config's boxes:) this machine is."""
    parser.add_argument("--box", default=None, metavar="ID",
                        help="with boxes: in the site config, the box this machine is: only its stations are run "
                             "(docs/boxes.md)")


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
    log_format.add_option(d)
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
    add_box_option(run)
    log_format.add_option(run)
    u = cmd("user", "the people who sign in to the proctor UI")
    u.add_argument("action", choices=["add", "passwd", "list"],
                   help="add NAME: a new user (asks for the password); passwd NAME: a new password for NAME; list")
    u.add_argument("name", nargs="?", help="with add and passwd: the user name")
    u.add_argument("--role", choices=["admin", "examiner", "proctor"], default=None, help="with add: the user's role")
    u.add_argument("--stations", default="", metavar="A01,A02", help="with add: an examiner's stations")
    u.add_argument("--password-stdin", action="store_true",
                   help="with add and passwd: read the password from the first line of standard input (for scripts)")
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
    add_box_option(sub.choices["site-check"])
    add_install_service_parser(sub)
    return p


