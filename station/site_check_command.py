"""`examstation site-check --config FILE [--json] [--html OUT] [--publish]`: is this hall fit to hold exams?

Runs every probe against the site config (station/site_check/), keeps the report in the data
directory for the UI (`save_report`), prints it (a table, or `--json`), and on request writes the
printable HTML report and publishes the signed report to the province.

Exit status: 0 when every check passed; 3 when any failed ("site not fit": kept apart from 1, an
internal error, and 2, a usage or config error, so a script tells a failing site from a failing
command); 4 when `--publish` could not deliver the report (the message says why). The data
directory is locked as `run` locks it: the devices belong to a running controller, and a check
beside it would read half of each serial line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from station.config import SiteConfig
from station.data_lock import lock_data_dir

SITE_NOT_FIT = 3
"""Exit status when the site check ran and something failed."""
PUBLISH_FAILED = 4
"""Exit status when `--publish` could not deliver the report (the province does not have it)."""


def add_parser(sub: Any) -> None:
    """Register `site-check` on the CLI's subparsers (`sub` is argparse's _SubParsersAction)."""
    c = sub.add_parser("site-check", help="acceptance check of the hall: stations, devices, cameras, clock, disk, "
                                          "records, uplink; exit 0 when fit, 3 naming every failure")
    c.add_argument("--config", type=Path, default=None, help="site config YAML (default examples/site.yaml)")
    c.add_argument("--data-dir", type=Path, default=None, help="database, keys and evidence directory")
    c.add_argument("--json", action="store_true", help="print the report as JSON (no table, no progress)")
    c.add_argument("--html", type=Path, default=None, metavar="OUT", help="also write the printable HTML report here")
    c.add_argument("--publish", action="store_true",
                   help="also send the signed report to the province (examstation/v1/SITE/acceptance)")


def site_check(args: argparse.Namespace, config: SiteConfig, config_path: Path, data_dir: Path) -> int:
    """Run the check and report it; the exit status (0 fit, 3 not fit)."""
    # Imported here: the CLI registers this command on every start, the probes' drivers load only for it.
    from station.site_check.console import ProgressDisplay, print_table
    from station.site_check.html_report import write_html
    from station.site_check.publish import PublishError, publish_report
    from station.site_check.report import CheckContext, save_report
    from station.site_check.runner import default_probes, run_site_check

    if not getattr(args, "verbose", False):
        # Each device problem is a failed check with its fix; the drivers' own warnings would say it twice.
        logging.getLogger("devices").setLevel(logging.ERROR)
    ctx = CheckContext(config=config, config_path=config_path, data_dir=data_dir,
                       sample_s=config.acceptance.sample_s)
    with lock_data_dir(data_dir, "site-check"):
        show = sys.stderr.isatty() and not args.json
        with ProgressDisplay(show) as progress:
            report = asyncio.run(run_site_check(ctx, default_probes(), progress))
        saved = save_report(report, data_dir)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=1))
    else:
        print_table(report)
        print(f"report kept in {saved}")
    told = sys.stderr if args.json else sys.stdout
    if args.html:
        write_html(report, args.html)
        print(f"HTML report written to {args.html}", file=told)
    if args.publish:
        try:
            receipt = asyncio.run(publish_report(report, config, data_dir))
        except PublishError as err:  # the check itself ran: its verdict stands, the province lacks it
            print(f"examstation: the report was NOT published: {err}", file=sys.stderr)
            return PUBLISH_FAILED
        print(f"published to the province: {receipt}", file=told)
    return 0 if report.passed else SITE_NOT_FIT
