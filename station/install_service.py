"""`examstation install-service`: `examstation run` as a systemd service an operator can start and watch.

Writes the unit (Type=notify: the controller says when it is up, and pings the watchdog from its
main loop, so a hung loop is restarted; station.service_notify), copies the validated site config
to /etc/examstation/site.yaml, creates the dedicated system user and the data directory it owns
with the database in it, then says the one command that starts it. Each step says what it did or
found; a step with nothing to do changes nothing, so running it again is safe. An existing
config that differs from the one given is kept, and said so: an operator may have edited it there.

`--root DIR` writes the same files under DIR (an image being built, a test) and leaves the user
and ownership to the image; `--dry-run` only says what it would do. The unit's hardening keeps
serial devices usable: no PrivateDevices, the `dialout` group for /dev/ttyUSB* and
/dev/serial/by-id/*, the whole file system read-only but the data directory.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from station.config import ConfigError, SiteConfig, load_site_config
from station.errors import UsageError

UNIT_PATH = Path("/etc/systemd/system/examstation.service")
CONFIG_PATH = Path("/etc/examstation/site.yaml")
DEFAULT_DATA_DIR = Path("/var/lib/examstation")
DEFAULT_USER = "examstation"
START_COMMAND = "systemctl daemon-reload && systemctl enable --now examstation"
USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")
UNSAFE_IN_UNIT = set(" \t\n\"'\\%$;")
"""Characters a path in the unit would need quoted or escaped (a space splits ExecStart, % is a
specifier, $ a variable): refused instead, with the fix."""
REFERENCED_FILES = (("uplink", "password_file"), ("uplink", "ca_file"), ("uplink", "province_key"),
                    ("acceptance", "requirements"), ("monitoring", "metrics_token_file"))
"""Files the site config names; the service reads relative ones from /etc/examstation (its WorkingDirectory)."""


def add_parser(sub: Any) -> None:
    """Register `install-service` on the CLI's subparsers (`sub` is argparse's _SubParsersAction)."""
    c = sub.add_parser("install-service", help="install `examstation run` as a systemd service: the unit, the config "
                                               "in /etc/examstation, a system user and its data directory")
    c.add_argument("--config", type=Path, default=None,
                   help="the site config to install as /etc/examstation/site.yaml (validated first)")
    c.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help=f"the service's data directory (default {DEFAULT_DATA_DIR})")
    c.add_argument("--user", default=DEFAULT_USER, help=f"the system user it runs as (default {DEFAULT_USER})")
    c.add_argument("--root", type=Path, default=None, metavar="DIR",
                   help="write every file under DIR (an image, a test); creates no user and changes no owner")
    c.add_argument("--dry-run", action="store_true", help="say what it would do; change nothing")
    c.add_argument("--box", default=None, metavar="ID",
                   help="with boxes: in the site config, the box this machine is; the unit runs `run --box ID` "
                        "(docs/boxes.md)")


def unit_text(executable: Path, data_dir: Path, user: str, box: str | None = None) -> str:
    """The unit file: the controller under the notify protocol, its watchdog, restarts and hardening."""
    box_option = f" --box {box}" if box else ""
    return f"""\
# Written by `examstation install-service`; docs/service.md explains each line.
[Unit]
Description=examstation: the exam site's station controller (devices, evidence video, scoring, uplink)
Documentation=man:systemd.service(5)
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={executable} run --config {CONFIG_PATH} --data-dir {data_dir} --log-format json{box_option}
WorkingDirectory={CONFIG_PATH.parent}
User={user}
SupplementaryGroups=dialout
WatchdogSec=30
Restart=on-failure
RestartSec=5
RestartPreventExitStatus=2
TimeoutStopSec=60
ProtectSystem=strict
ReadWritePaths={data_dir}
PrivateTmp=true
NoNewPrivileges=true

[Install]
WantedBy=multi-user.target
"""


def installed_executable() -> Path:
    """The `examstation` beside this interpreter: the virtual environment's script. The path is made
    absolute but symlinks are kept (a venv's python links to the system's; resolved, it leaves the venv)."""
    exe = Path(os.path.abspath(sys.executable)).parent / "examstation"
    if not os.access(exe, os.X_OK):
        raise UsageError(f"{exe} is not there: install-service puts the examstation of this Python's environment in "
                         "the unit; run it with the virtual environment's examstation (make setup creates .venv)")
    return exe


def install_service(args: argparse.Namespace, config: SiteConfig, config_path: Path) -> int:
    """`examstation install-service`: each step printed as done (or, with --dry-run, as it would be)."""
    data_dir: Path = args.data_dir
    user: str = args.user
    root: Path | None = args.root
    if not data_dir.is_absolute():
        raise UsageError(f"--data-dir {data_dir}: give an absolute path (the service does not run from here)")
    if not USER_NAME.match(user):
        raise UsageError(f"--user {user!r}: give a system user name (lower-case letters, digits, _ and -)")
    executable = installed_executable()
    for what, path in (("--data-dir", data_dir), ("the examstation path", executable)):
        if UNSAFE_IN_UNIT & set(str(path)):
            raise UsageError(f"{what} {path}: a path in the unit must not hold spaces, quotes, %, $ or ;; "
                             "choose one without")
    if root is None and not args.dry_run and os.geteuid() != 0:
        raise UsageError("install-service writes /etc and creates a system user: run it as root (sudo), "
                         "or give --root DIR to write the files under DIR")
    try:  # a split hall's `run` needs its box: checked now, not at the service's every start
        box = config.for_box(args.box).this_box
    except ConfigError as err:
        raise UsageError(f"{err} (install-service --box ID puts it in the unit)") from err
    step = _Steps(root, args.dry_run)
    step.file(UNIT_PATH, unit_text(executable, data_dir, user, box.id if box else None).encode(), "the unit",
              replace=True)
    kept = step.file(CONFIG_PATH, config_path.read_bytes(), f"the site config (from {config_path})", replace=False)
    installed = _kept_config(step) if kept else config
    if installed is not None:
        _referenced_files(step, installed)
    step.user(user, data_dir)
    step.data_dir(data_dir, user)
    where = "on the machine, as root" if root is None else f"once {root}'s files are on the machine, as root"
    print(f"{'then' if args.dry_run else 'next'}, {where}: {START_COMMAND}")
    print("  watch it: systemctl status examstation; its log: journalctl -u examstation -o cat | jq  (docs/service.md)")
    return 0


class _Steps:
    """The install's steps under `root` (None: /), each printed; with `dry_run` nothing changes."""

    def __init__(self, root: Path | None, dry_run: bool) -> None:
        self.root = root
        self.dry_run = dry_run

    def at(self, path: Path) -> Path:
        return path if self.root is None else self.root / path.relative_to("/")

    def say(self, text: str) -> None:
        print(("would " if self.dry_run else "") + text, flush=True)

    def file(self, path: Path, content: bytes, what: str, *, replace: bool) -> bool:
        """Write `content` at `path` (mode 0644). True when a different file is there and is kept (not `replace`)."""
        target = self.at(path)
        if target.is_file() and target.read_bytes() == content:
            print(f"{what}: {target} is already installed", flush=True)
            return False
        if target.exists() and not replace:
            print(f"{what}: {target} exists and differs; it is KEPT, and the service uses it. To install the new "
                  f"one, compare them (diff), move {target} away and run install-service again", flush=True)
            return True
        verb = "replace" if target.exists() else "write"
        self.say(f"{verb} {what}: {target}")
        if not self.dry_run:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(target.name + ".new")
            temporary.write_bytes(content)
            temporary.chmod(0o644)
            temporary.replace(target)  # a half-written unit or config is never what systemd reads
        return False

    def user(self, user: str, data_dir: Path) -> None:
        if self.root is not None:
            print(f"--root: no user is created; the image needs the system user {user} (useradd --system "
                  f"--user-group --home-dir {data_dir} --shell /usr/sbin/nologin {user}) owning {data_dir}", flush=True)
            return
        try:
            pwd.getpwnam(user)
            print(f"user {user} exists", flush=True)
            return
        except KeyError:
            pass
        command = ["useradd", "--system", "--user-group", "--home-dir", str(data_dir), "--no-create-home",
                   "--shell", "/usr/sbin/nologin", user]
        self.say(f"create the system user {user}: {' '.join(command)}")
        if not self.dry_run:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise UsageError(f"useradd could not create the user {user}: {done.stderr.strip()}; create it, then "
                                 "run install-service again")

    def data_dir(self, data_dir: Path, user: str) -> None:
        """The data directory with the database created (`run` refuses a missing one), owned by `user`."""
        from station.data_lock import lock_data_dir
        from station.maintenance import db_upgrade

        target = self.at(data_dir)
        self.say(f"create the data directory and its database: {target} (examstation db upgrade)")
        if self.dry_run:
            if self.root is None:
                self.say(f"give {target} to {user} (chown -R)")
            return
        target.mkdir(parents=True, exist_ok=True, mode=0o750)
        with lock_data_dir(target, "install-service"):  # not under a running controller's feet
            print(f"  {db_upgrade(target)}", flush=True)
        if self.root is None:
            entry = pwd.getpwnam(user)
            self.say(f"give {target} to {user} (chown -R)")
            for folder, _dirs, files in os.walk(target):
                os.chown(folder, entry.pw_uid, entry.pw_gid)
                for name in files:
                    os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)
        else:
            print(f"--root: {target} keeps its owner; chown -R it to {user} in the image", flush=True)


def _kept_config(step: _Steps) -> SiteConfig | None:
    """The kept config is the one the service will load: say at once when it would not start."""
    try:
        return load_site_config(step.at(CONFIG_PATH))
    except ConfigError as err:
        print(f"  and the kept config is NOT valid, so the service would not start: {err}", flush=True)
        return None


def _referenced_files(step: _Steps, config: SiteConfig) -> None:
    """The files the installed config names must be where the service looks (relative: beside site.yaml)."""
    for section, field in REFERENCED_FILES:
        name = getattr(getattr(config, section, None), field, None)
        if not isinstance(name, str) or not name:
            continue
        seen_as = Path(name) if Path(name).is_absolute() else CONFIG_PATH.parent / name
        if not step.at(seen_as).is_file():
            print(f"the config's {section}.{field} names {name}: the service reads {seen_as}, which is not there "
                  "yet; put the file there, readable by the service's user", flush=True)
