"""The `examstation` command line: the entry point that configures logging and wires components.

Only the commands that work are here; each later one (run, replay, export, site-check...) is
added with the issue that builds it. Errors a user can fix (a bad config) end with exit status 2
and the message, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from station.config import ConfigError, load_site_config

log = logging.getLogger("examstation")

DEFAULT_CONFIG = Path("examples/site.yaml")


def _default_config() -> Path:
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    return Path(__file__).resolve().parents[1] / DEFAULT_CONFIG


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="examstation", description="特种作业实操考试点 station controller")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sim", help="run only the hardware simulators of a site config")
    s.add_argument("--config", type=Path, required=True, help="site config YAML (examples/site.yaml)")
    s.add_argument("--print-endpoints", action="store_true", help="print one JSON object per endpoint")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    d = sub.add_parser("demo", help="the whole site on this machine, against the simulator")
    d.add_argument("--config", type=Path, default=None, help="site config (default examples/site.yaml)")
    d.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    d.add_argument("--status-every", type=float, default=5.0, help="seconds between status lines")
    sc = sub.add_parser("scenarios", help="list the candidate scenarios with their expected outcome")
    sc.add_argument("--json", action="store_true", help="print a JSON list")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pymodbus logs every timeout as an error; our device layer reports them once, with the fix.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        if args.command == "scenarios":
            from station import demo

            print(demo.describe_scenarios(as_json=args.json))
            return 0
        config = load_site_config(args.config or _default_config())
        if args.command in ("sim", "demo"):
            # The only place production code reaches the simulator: on request, never in `run`.
            from station import demo

            if args.command == "sim":
                asyncio.run(demo.run_sim(config, args.print_endpoints, args.duration))
            else:
                asyncio.run(demo.run_demo(config, args.duration, args.status_every))
    except ConfigError as err:
        print(f"examstation: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `examstation scenarios | head`
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
