"""Does each station hold what its operation type needs? One Check per station per requirement row.

Read from the site config alone: whether a declared device works is the device check's question,
so a dead bench fails `device:A01/bench` and not this; a bench nobody declared fails
`station:A01/wiring-bench` and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from station.config import Station
from station.site_check.report import Check, CheckContext
from station.site_check.requirements import Requirement, Requirements, RequirementsError, load_requirements


async def check_stations(ctx: CheckContext) -> list[Check]:
    """Every station against the rows of its operation type (national, merged with the province's)."""
    override = ctx.config.acceptance.requirements
    try:
        rows = load_requirements(Path(override) if override else None, base_dir=ctx.config_path.parent)
    except RequirementsError as err:
        return [Check(id="station", category="station", title="station requirements can be read", passed=False,
                      detail=str(err), fix="correct the requirements file at the lines shown (or remove "
                      "acceptance.requirements from the site config to use the national rows)")]
    return station_checks(ctx.config.stations, rows)


def station_checks(stations: tuple[Station, ...], rows: Requirements) -> list[Check]:
    return [_check(st, row) for st in stations for row in rows[st.operation]]


def _check(st: Station, row: Requirement) -> Check:
    need = row.needed
    if row.cameras is not None:
        have = [c.id for c in st.cameras]
        what = "camera"
    else:
        profiles = row.profiles or ()
        have = [f"{d.name} ({d.profile})" for d in st.devices if d.profile in profiles]
        what = " or ".join(profiles)
    title = f"{st.id} {st.operation}: {row.title_zh}" + (f" x{need}" if need > 1 else "")
    figures: dict[str, str | int | float | bool | None] = {"have": len(have), "need": need}
    passed = len(have) >= need
    if passed:
        detail = ("waived (count 0)" if need == 0 else
                  f"{len(have)} of {need} needed: {', '.join(have)}")
        return Check(id=f"station:{st.id}/{row.id}", category="station", title=title, passed=True, detail=detail,
                     station=st.id, subject=row.id, figures=figures, source=row.source)
    found = f"only {', '.join(have)}" if have else "none"
    detail = f"station {st.id} ({st.operation}) needs {need} {what}, has {found}"
    if row.cameras is not None:
        fix = f"install {need - len(have)} more camera(s) at {st.id} and add them under its cameras: in the site config"
    else:
        fix = (f"install {row.title_zh} at {st.id} and add it under its devices: with profile: "
               f"{(row.profiles or ('?',))[0]} in the site config")
    return Check(id=f"station:{st.id}/{row.id}", category="station", title=title, passed=False, detail=detail,
                 fix=fix, station=st.id, subject=row.id, figures=figures, source=row.source)
