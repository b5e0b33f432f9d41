"""The shipped rubric files: they load, hold the items of STANDARD.md on 100-point sheets, check
what the devices can see, hash what they contain, and a broken copy says where it is broken.

Also replays small timelines through the engine: a model candidate loses no automatic points, and
the worked example of docs/rubrics.md gives the sheet the document shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from devices.profile import available_profiles, load_profile
from scoring.detectors.bands import BandParams
from scoring.detectors.base import Condition
from scoring.detectors.equipment import AgentParams, PpeParams
from scoring.engine import score
from scoring.rig import signals_read
from scoring.rubric import Item, Rubric
from scoring.rubric_loader import RUBRIC_DIR, RubricError, load_rubric_file, rubric_for
from scoring.sheet import ItemScore
from scoring.timeline import LifecycleRecord, MarkRecord, Record, SampleRecord, Value

LV = RUBRIC_DIR / "lv-electrician-2015.yaml"
WELD = RUBRIC_DIR / "welding-2015.yaml"

LV_ITEMS = ["K11", "K12", "K13", "K21", "K22", "K23", "K24", "K25", "K31", "K32", "K41", "K42", "K43"]
WELD_ITEMS = ["K11", "K12", "K13", "K14", "K21", "K22", "K23", "K24", "K31", "K41", "K42"]
# items whose device (wiring bench, welding simulator + power source) reports what they score
DEVICE_K2 = {LV: ["K21", "K22", "K23", "K24"], WELD: ["K21", "K22", "K23"]}
# STANDARD.md time limits that were found (national-2015) or stated by a sheet (provincial-sheet)
FOUND_LIMITS = {
    LV: {"K11": 600, "K12": 600, "K13": 600, "K21": 1800, "K22": 2700, "K42": 600},
    WELD: {"K11": 900, "K41": 600},
}
CPR_SHEET = [4, 4, 6, 6, 30, 4, 6, 20, 4, 10, 4, 2]
S = 1_000_000_000


@pytest.fixture(scope="module")
def lv() -> Rubric:
    return load_rubric_file(LV)


@pytest.fixture(scope="module")
def weld() -> Rubric:
    return load_rubric_file(WELD)


def _rubric(path: Path) -> Rubric:
    return load_rubric_file(path)


def _conditions(params: object) -> Iterator[Condition]:
    for name in ("when", "first", "then", "gate"):
        c = getattr(params, name, None)
        if isinstance(c, Condition):
            yield c


def _signals(item: Item) -> Iterator[str]:
    refs = [d.detector for r in item.rows for d in r.deductions] + [v.detector for v in item.vetoes]
    for ref in refs:
        if ref is None:
            continue
        p = ref.params
        yield from (c.signal for c in _conditions(p))
        if isinstance(p, BandParams):
            yield p.signal
        elif isinstance(p, PpeParams):
            yield from (p.prefix + slot for slot in (*p.required, *p.wrong))
        elif isinstance(p, AgentParams):
            yield from (p.type_signal, p.class_signal, p.discharge_signal)
        elif ref.name.startswith("cpr_"):
            yield "manikin.compression"
    yield from (r.condition.signal for r in item.rest)


# --- the files -----------------------------------------------------------------------------------

def test_both_files_load_with_their_identity(lv: Rubric, weld: Rubric) -> None:
    assert (lv.id, lv.operation) == ("lv-electrician-2015", "低压电工作业")
    assert (weld.id, weld.operation) == ("welding-2015", "熔化焊接与热切割作业")
    for r in (lv, weld):
        assert [(s.code, s.weight, s.source) for s in r.subjects] == [
            ("K1", 0.2, "national-2015"), ("K2", 0.4, "national-2015"),
            ("K3", 0.2, "national-2015"), ("K4", 0.2, "national-2015")]
        assert (r.pass_total, r.pass_source) == (80, "national-2015")
        assert r.hash.startswith("sha256:")
    assert rubric_for("低压电工作业").hash == lv.hash
    assert rubric_for("熔化焊接与热切割作业").hash == weld.hash


def test_exactly_the_items_of_the_standard(lv: Rubric, weld: Rubric) -> None:
    assert [i.code for i in lv.items] == LV_ITEMS
    assert [i.code for i in weld.items] == WELD_ITEMS
    for r in (lv, weld):
        for i in r.items:
            assert i.subject == i.code[:2], f"{r.id} {i.code} is filed under {i.subject}"


@pytest.mark.parametrize("path", [LV, WELD], ids=["lv", "weld"])
def test_every_item_is_a_100_point_sheet_whose_rows_can_reach_zero(path: Path) -> None:
    for item in _rubric(path).items:
        assert sum(r.points for r in item.rows) == pytest.approx(100), item.code
        for row in item.rows:
            assert row.deductions, f"{item.code} {row.code}: a row nobody can deduct from"
            reach = 0.0
            for d in row.deductions:
                proportional = d.detector is not None and d.detector.name == "band_share"
                reach += d.points if proportional else (float("inf") if d.max_count is None else d.points * d.max_count)
            assert reach >= row.points, f"{item.code} {row.code}: deductions can take only {reach:g} of {row.points:g}"


@pytest.mark.parametrize("path", [LV, WELD], ids=["lv", "weld"])
def test_codes_are_unique_within_an_item(path: Path) -> None:
    for item in _rubric(path).items:
        rows = [r.code for r in item.rows]
        marks = [d.code for r in item.rows for d in r.deductions] + [v.code for v in item.vetoes]
        assert len(set(rows)) == len(rows), item.code
        assert len(set(marks)) == len(marks), item.code
        assert not set(rows) & set(marks), item.code
        assert all(c.startswith(item.code + "-") for c in rows + marks), item.code


@pytest.mark.parametrize("path", [LV, WELD], ids=["lv", "weld"])
def test_every_device_k2_item_has_automatic_deductions(path: Path) -> None:
    rubric = _rubric(path)
    for code in DEVICE_K2[path]:
        item = rubric.item(code)
        auto = [d.code for r in item.rows for d in r.deductions if d.detector is not None]
        assert auto, f"{rubric.id} {code} has no automatic deduction"


@pytest.mark.parametrize("path", [LV, WELD], ids=["lv", "weld"])
def test_detectors_read_only_signals_some_device_profile_provides(path: Path) -> None:
    provided = {p.signal for name in available_profiles() for p in load_profile(name).points}
    for item in _rubric(path).items:
        for signal in _signals(item):
            assert signal in provided, f"{item.code} reads {signal}, which no profile in devices/profiles/ maps"


@pytest.mark.parametrize("path", [LV, WELD], ids=["lv", "weld"])
def test_what_detectors_declare_they_read_covers_every_signal_their_params_name(path: Path) -> None:
    """Device gaps and the value checks depend on each detector's `reads`: it must name at least
    every signal its parameters do."""
    for item in _rubric(path).items:
        missing = set(_signals(item)) - signals_read(item)
        assert not missing, f"{item.code}: detectors read {sorted(missing)} without declaring it"


@pytest.mark.parametrize("path", [LV, WELD], ids=["lv", "weld"])
def test_every_device_item_declares_its_rigs_rest_state(path: Path) -> None:
    """An item that reads a bench, manikin, extinguisher, cabinet or booth says what that rig must
    show before it starts, so the previous candidate's state is never scored as this one's."""
    for item in _rubric(path).items:
        rigs = {s.split(".")[0] for s in _signals(item)} - {"weldsim"}  # the simulator follows the power source
        declared = {r.condition.signal.split(".")[0] for r in item.rest}
        assert rigs <= declared, f"{item.code} reads {sorted(rigs)} but declares the rest state of {sorted(declared)}"


@pytest.mark.parametrize("path", [LV, WELD], ids=["lv", "weld"])
def test_time_limits_found_in_the_standard_say_so(path: Path) -> None:
    rubric = _rubric(path)
    for item in rubric.items:
        if item.code in FOUND_LIMITS[path]:
            assert item.time_limit_s == FOUND_LIMITS[path][item.code], item.code
            assert item.time_limit_source in ("national-2015", "provincial-sheet"), item.code
        else:
            assert item.time_limit_source == "provisional", f"{item.code}: STANDARD.md gives no firm time limit"


def test_recovered_sheets_keep_their_numbers(lv: Rubric, weld: Rubric) -> None:
    k11 = lv.item("K11")
    assert [(r.points, r.source) for r in k11.rows] == [(20, "revision-appendix"), (20, "revision-appendix"),
                                                        (50, "revision-appendix"), (10, "revision-appendix")]
    assert {v.detector for v in k11.vetoes} == {None} and len(k11.vetoes) == 2
    assert [r.points for r in lv.item("K13").rows] == [20, 20, 60]
    assert [(r.points, r.source) for r in lv.item("K41").rows] == [(50, "revision-appendix")] * 2
    assert [r.points for r in weld.item("K11").rows] == [40, 60]
    for cpr in (lv.item("K42"), weld.item("K41")):
        assert [r.points for r in cpr.rows] == CPR_SHEET
        assert {r.source for r in cpr.rows} == {"provincial-sheet"}
        assert cpr.report == "cpr"
        compress = cpr.rows[4]
        assert sorted((d.detector.name if d.detector else "", d.points) for d in compress.deductions) == [
            ("cpr_depth", 2), ("cpr_recoil", 2), ("cpr_rhythm", 5), ("cpr_set_duration", 5)]
        breaths = cpr.rows[7].deductions
        assert [(d.detector.name if d.detector else "", d.points) for d in breaths] == [("cpr_breaths", 2)]
    assert [weld.item(c).report for c in ("K21", "K22", "K23")] == ["weld"] * 3


def _shape(item: Item) -> list[object]:
    """An item without its code: to compare the same sheet filed under different codes."""
    strip = item.code
    return [(r.code.replace(strip, ""), r.points, r.source,
             [(d.code.replace(strip, ""), d.points, d.max_count, d.source, d.detector) for d in r.deductions])
            for r in item.rows] + [(v.code.replace(strip, ""), v.source, v.detector) for v in item.vetoes]


def test_cpr_and_extinguisher_items_are_the_same_sheet_in_both_operations(lv: Rubric, weld: Rubric) -> None:
    assert _shape(lv.item("K42")) == _shape(weld.item("K41"))
    assert _shape(lv.item("K43")) == _shape(weld.item("K42"))


# --- the hash ------------------------------------------------------------------------------------

def test_hash_is_stable_and_names_the_content(tmp_path: Path) -> None:
    text = LV.read_text(encoding="utf-8")
    first, second = load_rubric_file(LV), load_rubric_file(LV)
    assert first.hash == second.hash

    reformatted = tmp_path / "lv-electrician-2015.yaml"
    reformatted.write_text("# a province's comment\n" + text.replace("\n\n", "\n"), encoding="utf-8")
    assert load_rubric_file(reformatted).hash == first.hash, "comments and blank lines are not content"

    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("{code: K13-1a, reason_zh: 标示名称错误（每个）, points: 4,",
                                    "{code: K13-1a, reason_zh: 标示名称错误（每个）, points: 5,", 1), encoding="utf-8")
    other = load_rubric_file(changed)
    assert other.item("K13").rows[0].deductions[0].points == 5
    assert other.hash != first.hash


# --- broken copies -------------------------------------------------------------------------------

BROKEN = {
    "row points not adding to 100": (
        "      - code: K21-4\n        title_zh: 安全文明操作与用时\n        points: 15",
        "      - code: K21-4\n        title_zh: 安全文明操作与用时\n        points: 12",
        ["item K21", "rows add up to 97 points, not 100"]),
    "unknown detector": (
        "name: never_reached\n              params: {when: {signal: bench.sb3_jog",
        "name: never_reachd\n              params: {when: {signal: bench.sb3_jog",
        ["item K21", "row K21-3", "deduction K21-3c", "unknown detector 'never_reachd'"]),
    "missing source": (
        "      - code: K21-2\n        title_zh: 通电前用仪表检查线路\n        points: 10\n"
        "        source: provisional\n",
        "      - code: K21-2\n        title_zh: 通电前用仪表检查线路\n        points: 10\n",
        ["item K21", "row K21-2", "source", "Field required"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_copy_says_which_file_item_and_row(case: str, tmp_path: Path) -> None:
    old, new, expected = BROKEN[case]
    text = LV.read_text(encoding="utf-8")
    assert text.count(old) == 1, "the shipped file changed: update the broken-copy fixture"
    path = tmp_path / "lv-electrician-2015.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(RubricError) as err:
        load_rubric_file(path)
    message = str(err.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_a_wrong_row_sum_lists_the_rows(tmp_path: Path) -> None:
    old, new, _ = BROKEN["row points not adding to 100"]
    path = tmp_path / "lv-electrician-2015.yaml"
    path.write_text(LV.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    with pytest.raises(RubricError, match="K21-4"):
        load_rubric_file(path)


# --- replaying timelines -------------------------------------------------------------------------

def sample(signal: str, value: Value, t_s: float) -> SampleRecord:
    return SampleRecord(signal, value, int(t_s * S), int(t_s * S))


def run(rubric: Rubric, code: str, records: Sequence[Record], end_s: float) -> ItemScore:
    timeline = [LifecycleRecord("attempt_start", 0, 0), LifecycleRecord("item_start", 0, 0, item=code),
                *records, LifecycleRecord("item_end", int(end_s * S), int(end_s * S), item=code, detail="done")]
    return score(rubric, tuple(sorted(timeline, key=lambda r: r.t_mono_ns))).item(code)


def auto_lines(item_score: ItemScore) -> list[str]:
    return [f"{d.code} {d.detail}" for r in item_score.rows for d in r.deductions if d.by == "auto"]


def test_a_model_k21_candidate_loses_no_automatic_points(lv: Rubric) -> None:
    records: list[Record] = [
        sample("bench.meter_probe", True, 100), sample("bench.meter_probe", False, 130),
        sample("bench.check_result", 1, 140), sample("bench.main_switch", True, 150),
        sample("bench.sb3_jog", True, 160), sample("bench.motor_dir", 1, 160),
        sample("bench.sb3_jog", False, 162), sample("bench.motor_dir", 0, 162),
        sample("bench.sb2_start", True, 170), sample("bench.motor_dir", 1, 170), sample("bench.sb2_start", False, 171),
        sample("bench.sb1_stop", True, 200), sample("bench.motor_dir", 0, 200), sample("bench.sb1_stop", False, 201),
    ]
    item = run(lv, "K21", records, 1500)
    assert auto_lines(item) == []
    assert item.score == 100 and item.outcome == "scored"


def test_the_worked_example_of_the_rubric_document(lv: Rubric) -> None:
    """docs/rubrics.md, "From file to score": the same timeline must give the sheet shown there."""
    records: list[Record] = [
        sample("bench.main_switch", True, 60), sample("bench.short_trip", True, 61),
        sample("bench.main_switch", False, 61), sample("bench.short_trip", False, 90),
        sample("bench.meter_probe", True, 120), sample("bench.meter_probe", False, 150),
        sample("bench.check_result", 2, 200), sample("bench.check_fault", 2, 200),
        sample("bench.check_result", 1, 400), sample("bench.check_fault", 0, 400),
        sample("bench.main_switch", True, 420),
        sample("bench.sb3_jog", True, 430), sample("bench.motor_dir", 1, 430),
        sample("bench.sb3_jog", False, 432), sample("bench.motor_dir", 0, 432),
        sample("bench.sb2_start", True, 440), sample("bench.motor_dir", 1, 440), sample("bench.sb2_start", False, 441),
        sample("bench.sb1_stop", True, 500), sample("bench.motor_dir", 0, 500), sample("bench.sb1_stop", False, 501),
        MarkRecord("K21", "K21-1b", 3, "examiner-1", "", 2160 * S, 2160 * S),
        MarkRecord("K21", "K21-5a", 1, "examiner-1", "", 2160 * S, 2160 * S),
    ]
    item = run(lv, "K21", records, 2160)
    assert [(r.code, r.points) for r in item.rows] == [
        ("K21-1", 19), ("K21-2", 0), ("K21-3", 5), ("K21-4", 11), ("K21-5", 5)]
    assert sorted((d.code, d.points, d.count) for r in item.rows for d in r.deductions) == [
        ("K21-1b", 6, 3), ("K21-2a", 10, 1), ("K21-3a", 20, 1), ("K21-3g", 15, 1), ("K21-4c", 4, 2), ("K21-5a", 5, 1)]
    assert item.score == 40


def test_motor_overload_is_a_veto(lv: Rubric) -> None:
    item = run(lv, "K22", [sample("bench.fr_trip", True, 300)], 900)
    assert item.outcome == "veto" and item.score == 0
    assert [v.code for v in item.vetoes] == ["K22-V1"]


def _cpr(good: bool) -> list[Record]:
    out: list[Record] = [
        sample("manikin.state", {"consciousness_check": True, "pulse_check": False, "airway_open": False,
                                 "head_tilt_deg": 0, "device_ms": 5_000}, 5),
        sample("manikin.state", {"consciousness_check": False, "pulse_check": True, "airway_open": False,
                                 "head_tilt_deg": 0, "device_ms": 15_000}, 15),
        sample("manikin.state", {"consciousness_check": False, "pulse_check": False, "airway_open": False,
                                 "head_tilt_deg": 0, "device_ms": 22_000}, 22),
    ]
    t = 25.0
    for cycle in range(5):
        for _ in range(30):
            t += 0.545  # 110/min: a set of 30 takes 16.4 s
            depth = 55 if good else 45
            out.append(sample("manikin.compression", {"depth_mm": depth, "recoil_ok": True, "hand_zone": "correct",
                                                      "duration_ms": 270, "peak_force_n": 0, "device_ms": t * 1000}, t))
        if cycle == 0:
            out.append(sample("manikin.state", {"consciousness_check": False, "pulse_check": False, "airway_open": True,
                                                "head_tilt_deg": 30, "device_ms": (t + 0.5) * 1000}, t + 0.5))
        for _ in range(2):
            t += 2.0
            out.append(sample("manikin.ventilation", {"volume_ml": 550, "duration_ms": 1200, "device_ms": t * 1000}, t))
        t += 1.0
    return out


@pytest.mark.parametrize("path,code", [(LV, "K42"), (WELD, "K41")], ids=["lv-K42", "weld-K41"])
def test_cpr_model_candidate_and_shallow_compressions(path: Path, code: str) -> None:
    rubric = _rubric(path)
    assert auto_lines(run(rubric, code, _cpr(True), 300)) == []
    shallow = run(rubric, code, _cpr(False), 300)
    compress = shallow.rows[4]
    shallow_lines = [d for d in compress.deductions if d.code == f"{code}-5c"]
    assert len(shallow_lines) == 150 and sum(d.points for d in shallow_lines) == 300  # one line per compression
    assert compress.points == 0  # -2 x 150 floors the 30-point row


def test_extinguisher_model_candidate_and_water_on_an_electrical_fire(lv: Rubric, weld: Rubric) -> None:
    def attempt(fire_class: int, agent: int, zone: int, distance: int) -> list[Record]:
        return [sample("extinguisher.fire_class", fire_class, 1), sample("extinguisher.type_chosen", agent, 10),
                sample("extinguisher.pin_pulled", True, 20), sample("extinguisher.hose_held", True, 22),
                sample("extinguisher.discharging", True, 25), sample("extinguisher.aim_zone", zone, 25),
                sample("extinguisher.distance_cm", distance, 25), sample("extinguisher.fire_out", True, 29),
                sample("extinguisher.discharging", False, 30), sample("extinguisher.aim_zone", 0, 30)]

    for rubric, code in ((lv, "K43"), (weld, "K42")):
        good = run(rubric, code, attempt(2, 1, 1, 200), 120)
        assert auto_lines(good) == [] and good.outcome == "scored"
        middle = run(rubric, code, attempt(2, 1, 2, 200), 120)
        assert [(d.code, d.points) for r in middle.rows for d in r.deductions] == [(f"{code}-4c", 15)]
        water_b = run(rubric, code, attempt(2, 4, 1, 200), 120)
        assert water_b.outcome == "scored"
        assert water_b.rows[1].points == 0
        water_e = run(rubric, code, attempt(4, 4, 1, 200), 120)
        assert water_e.outcome == "veto" and water_e.score == 0


def test_ppe_cabinet_choice(lv: Rubric, weld: Rubric) -> None:
    arc_kit = ["welding_mask", "respirator", "ear_plugs", "welding_clothing", "welding_gloves", "safety_boots",
               "spats", "safety_helmet"]
    taken = [sample(f"cabinet.slot.{slot}", False, 10 + i) for i, slot in enumerate(arc_kit)]
    assert auto_lines(run(weld, "K11", taken, 600)) == []
    careless = run(weld, "K11", [*taken[:-2], sample("cabinet.slot.sunglasses", False, 30)], 600)
    assert careless.rows[0].points == 40 - 3 * 5
    kit = ("insulating_gloves", "insulating_boots", "safety_helmet")
    electrician = [sample(f"cabinet.slot.{slot}", False, 10) for slot in kit]
    assert auto_lines(run(lv, "K12", electrician, 600)) == []


@pytest.mark.parametrize("code,process,speed,ctwd,gas", [
    ("K21", 1, 3.5, 4.0, False), ("K22", 2, 6.0, 12.0, True), ("K23", 3, 2.5, 3.5, True)])
def test_weld_model_candidate_then_a_wandering_torch(weld: Rubric, code: str, process: int, speed: float,
                                                      ctwd: float, gas: bool) -> None:
    def attempt(offset_late: float) -> list[Record]:
        out: list[Record] = [sample("weldsim.process", process, 1), sample("weld.power_on", True, 5),
               sample("weld.earth_clamp_on", True, 10)]
        if gas:
            out.append(sample("weld.gas_valve_open", True, 15))
        out += [sample("weldsim.position_offset_mm", 0.0, 19), sample("weldsim.travel_speed_mm_s", speed, 19),
                sample("weldsim.work_angle_deg", 90.0, 19), sample("weldsim.travel_angle_deg", 15.0, 19),
                sample("weldsim.ctwd_mm", ctwd, 19), sample("weldsim.filler_angle_deg", 20.0, 19),
                sample("weldsim.torch_trigger", True, 20), sample("weldsim.arc_on", True, 20),
                sample("weld.arc_on", True, 20),
                sample("weldsim.position_offset_mm", offset_late, 50),
                sample("weldsim.torch_trigger", False, 80), sample("weldsim.arc_on", False, 80),
                sample("weld.arc_on", False, 80)]
        return out

    assert auto_lines(run(weld, code, attempt(0.5), 600)) == []
    wandering = run(weld, code, attempt(3.0), 600)  # off the joint for the second half of the arc time
    offset_row = wandering.rows[4]
    assert offset_row.points == 12.5
    no_clamp = run(weld, code, [r for r in attempt(0.5) if getattr(r, "signal", "") != "weld.earth_clamp_on"], 600)
    assert [d.code for d in no_clamp.rows[1].deductions] == [f"{code}-2a"]
