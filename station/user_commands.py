"""`examstation user add` / `user passwd` / `user list`: the people who sign in to the proctor UI.

There is no default password: `add` asks for one twice without echo (or reads one line with
`--password-stdin`, for scripts), and refuses a short one before anything is stored. `passwd` sets
a new one the same way: the way back in for a forgotten password, the administrator's included
(on the box, where the data directory is; the UI's user page does it for the others).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from station.config import SiteConfig
from station.errors import UsageError


def user_command(args: argparse.Namespace, config: SiteConfig, data_dir: Path) -> int:
    """`examstation user add NAME --role ROLE [--stations A01,A02] [--password-stdin]`, `user passwd NAME
    [--password-stdin]`, `user list`."""
    from station import maintenance

    if args.action == "list":
        print(maintenance.user_list(config, data_dir))
        return 0
    if args.action == "passwd":
        if not args.name:
            raise UsageError("user passwd needs the name: examstation user passwd NAME [--password-stdin]")
        print(maintenance.user_passwd(config, data_dir, args.name, new_password(args.name, args.password_stdin)))
        return 0
    if not args.name or not args.role:
        raise UsageError("user add needs the name and the role: examstation user add NAME --role "
                         "admin|examiner|proctor [--stations A01,A02]")
    password = new_password(args.name, args.password_stdin)
    stations = [s for s in args.stations.split(",") if s.strip()]
    print(maintenance.user_add(config, data_dir, args.name, args.role, password, stations))
    return 0


def new_password(name: str, from_stdin: bool) -> str:
    """A new password for `name`: one line of standard input, or typed twice without echo. No default."""
    from station.users import MIN_PASSWORD_CHARS

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass(f"password for {name} (at least {MIN_PASSWORD_CHARS} characters): ")
    if len(password) < MIN_PASSWORD_CHARS:
        raise UsageError(f"the password has {len(password)} characters; use at least {MIN_PASSWORD_CHARS}. "
                         "Nothing was changed")
    if not from_stdin and getpass.getpass("the same password again: ") != password:
        raise UsageError("the two passwords differ; nothing was changed: run the command again")
    return password
