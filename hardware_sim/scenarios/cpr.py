"""低压电工作业 K42 单人徒手心肺复苏: CPR on the electrician station's manikin, done right and done wrong.

Expected scores follow item K42 of scoring/rubrics/lv-electrician-2015.yaml (the provincial
100-point sheet). The manikin stamps every event with its own clock, which in a rehearsal runs on
exam time, so compressions are paced on an absolute exam-time schedule (no drift from sleeping):
110/min is one compression every 0.545 exam s, 30 of them take 16.4 s by the sheet's measure,
inside 15-18 s. Manual rows (call for help, clearing the mouth, reassessment, tidying up, overall
impression) are untouched: an examiner who marks nothing leaves them full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine

from hardware_sim.scenarios.base import ELECTRICIAN, Context, scenario

CPR_SCALE = 20.0
"""About 150 exam seconds of CPR play in 7-8 real seconds."""
GOOD_RATE_PER_MIN = 110.0
GOOD_DEPTH_MM = 55.0
GOOD_BREATH_ML = 550
BREATH_MS = 1200
"""Each breath lasts 1.2 s (over the 1 s the sheet asks for)."""
PULSE_CHECK_S = 7.0


async def assess(ctx: Context) -> None:
    """Tap the shoulders and shout (consciousness), call for help, feel the carotid for 7 s."""
    m = ctx.manikin
    await m.set_state(consciousness_check=True)
    await ctx.wait(3)
    await m.set_state(consciousness_check=False)
    await ctx.wait(3)  # calls for help and an AED (the examiner's row)
    await pulse_check(ctx)


async def pulse_check(ctx: Context, seconds: float = PULSE_CHECK_S) -> None:
    await ctx.manikin.set_state(pulse_check=True)
    await ctx.wait(seconds)
    await ctx.manikin.set_state(pulse_check=False)
    await ctx.wait(1)


async def compressions(ctx: Context, count: int = 30, rate_per_min: float = GOOD_RATE_PER_MIN,
                       depth_mm: Callable[[int], float] = lambda k: GOOD_DEPTH_MM,
                       recoil_ok: Callable[[int], bool] = lambda k: True) -> None:
    """One set of `count` compressions at a steady `rate_per_min` (k = 0-based number in the set).

    Paced against an absolute schedule, so a late wake-up does not shift the ones after it."""
    loop = asyncio.get_running_loop()
    period_real_s = 60.0 / rate_per_min / ctx.scale
    start = loop.time()
    start_device_ms = ctx.manikin.device_ms()
    for k in range(count):
        delay = start + k * period_real_s - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        # stamped by the schedule, as the manikin's own processor would: host jitter stays out
        await ctx.manikin.compress(depth_mm(k), recoil_ok=recoil_ok(k), duration_ms=round(30_000 / rate_per_min),
                                   device_ms=start_device_ms + round(k * 60_000 / rate_per_min))


async def breaths(ctx: Context, count: int = 2, volume_ml: int = GOOD_BREATH_ML) -> None:
    """Tilt the head, give `count` breaths of 1.2 s (the manikin reports each at its end), let go."""
    m = ctx.manikin
    await m.set_state(airway_open=True, head_tilt_deg=30)
    await ctx.wait(1)
    for _ in range(count):
        await ctx.wait(BREATH_MS / 1000)
        await m.ventilate(volume_ml, BREATH_MS)
        await ctx.wait(0.8)  # lets the chest fall
    await m.set_state(airway_open=False, head_tilt_deg=0)
    await ctx.wait(1)


SetOf = Callable[[Context, int], Coroutine[None, None, None]]
"""Plays the compressions of cycle n (0-based)."""


async def good_set(ctx: Context, n: int) -> None:
    await compressions(ctx)


async def cpr(ctx: Context, cycles: int = 5, set_of: SetOf = good_set) -> None:
    """Assessment, `cycles` cycles of 30:2, reassessment."""
    await assess(ctx)
    for c in range(cycles):
        await set_of(ctx, c)
        if c == 0:
            await ctx.wait(2)  # clears the mouth (the examiner's row) before the first breaths
        await breaths(ctx)
    await pulse_check(ctx)  # reassessment after 5 cycles (pulse timing is scored for every check)


@scenario("cpr-correct", ELECTRICIAN, "K42", 100, "scored",
          "Consciousness checked, carotid pulse felt for 7 s (5-10 s), 5 cycles of 30 compressions at "
          "110/min (each set of 30 takes 16.4 s, inside 15-18 s; rate inside 100-120; steady rhythm), "
          "55 mm deep with full recoil and the hands on the sternum, airway opened, 10 breaths of 550 ml "
          "lasting 1.2 s, a second 7 s pulse check, about 142 s in all (limit 600 s): no automatic "
          "deduction, manual rows unmarked: 4+4+6+6+30+4+6+20+4+10+4+2 = 100.", time_scale=CPR_SCALE)
async def cpr_correct(ctx: Context) -> None:
    await cpr(ctx)


@scenario("cpr-too-shallow", ELECTRICIAN, "K42", 70, "scored",
          "The candidate tires: the whole 5th set of 30 compressions is 45 mm deep (under 50 mm), K42-5c "
          "-2 each = 60, more than row K42-5 has, so K42-5 = 0 (-30); everything else as cpr-correct. "
          "100 - 30 = 70.", time_scale=CPR_SCALE)
async def cpr_too_shallow(ctx: Context) -> None:
    async def set_of(c: Context, n: int) -> None:
        await compressions(c, depth_mm=lambda k: 45.0 if n == 4 else GOOD_DEPTH_MM)

    await cpr(ctx, set_of=set_of)


@scenario("cpr-too-fast", ELECTRICIAN, "K42", 91, "scored",
          "All 5 sets at a steady 140/min: 30 compressions take 12.9 s (under 15 s), K42-5b -5 for set 1 "
          "(taken once per item, max_count 1); every set's mean rate 140/min is outside 100-120, but set 1's "
          "is the fault K42-5b already charged (one fault, one charge: K42-10a same_fault_as K42-5b), so "
          "K42-10a -1 x 4 sets (2-5) = -4 (it was -5 before that rule); depth, recoil, rhythm (steady), "
          "breaths and cycles fine. 100 - 5 - 4 = 91.",
          time_scale=CPR_SCALE)
async def cpr_too_fast(ctx: Context) -> None:
    async def set_of(c: Context, n: int) -> None:
        await compressions(c, rate_per_min=140)

    await cpr(ctx, set_of=set_of)


@scenario("cpr-three-cycles", ELECTRICIAN, "K42", 90, "scored",
          "Only 3 cycles of 30:2 before the reassessment: K42-10b -1 x 2 missing cycles = -2; 6 breaths "
          "given of the 10 expected, K42-8a -2 x 4 missing = -8; everything given was right. "
          "100 - 2 - 8 = 90.", time_scale=CPR_SCALE)
async def cpr_three_cycles(ctx: Context) -> None:
    await cpr(ctx, cycles=3)


@scenario("cpr-poor-recoil", ELECTRICIAN, "K42", 94, "scored",
          "The candidate leans on the chest for compressions 10-12 of the 2nd set: 3 compressions without "
          "full recoil, K42-5d -2 x 3 = -6; depth, rate and everything else right. 100 - 6 = 94.",
          time_scale=CPR_SCALE)
async def cpr_poor_recoil(ctx: Context) -> None:
    async def set_of(c: Context, n: int) -> None:
        await compressions(c, recoil_ok=lambda k: not (n == 1 and 9 <= k <= 11))

    await cpr(ctx, set_of=set_of)


@scenario("cpr-manikin-dies", ELECTRICIAN, "K42", 100, "scored",
          "The manikin's cable comes out after 2 good cycles and it never comes back; the candidate carries on "
          "and the examiner watches the last 3 cycles, then scores the item with the gap. What the manikin "
          "could not show is not the candidate's fault: the findings for the 3 cycles it never reported "
          "(K42-10b, 3 x -1) and their 6 breaths (K42-8a, 6 x -2) span the gap, so they are listed as "
          "unverified, not charged, for the examiner to decide (a mark charges one). Everything the "
          "manikin saw was right: 100.", time_scale=CPR_SCALE,
          score_with_gap="模拟人数据线脱落，考评员现场目视后 3 个循环按压与吹气合格")
async def cpr_manikin_dies(ctx: Context) -> None:
    await assess(ctx)
    for c in range(5):
        if c == 2:
            await ctx.power_off("manikin")
        await good_set(ctx, c)
        if c == 0:
            await ctx.wait(2)
        await breaths(ctx)
    await pulse_check(ctx)
