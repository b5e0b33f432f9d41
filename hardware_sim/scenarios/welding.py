"""熔化焊接与热切割作业 scenarios on the welding booth: K11 PPE for MMA, K21 MMA safe operation.

Expected scores follow scoring/rubrics/welding-2015.yaml. The weld-parameter rows of K21 are
proportional (band_share over the arc time, weldsim.arc_on); each scenario sets the torch before
the trigger and keeps it still until the arc is out, so the share outside a band is exactly 0 or
exactly 1 and the expected score does not depend on when the 20 ms polls fall. Manual rows
(wearing the PPE, pre-weld checks, switch-on order, housekeeping) are untouched: an examiner who
marks nothing leaves them full.
"""

from __future__ import annotations

from hardware_sim.scenarios.base import WELDING, Context, scenario

WELD_SCALE = 20.0
ARC_EXAM_S = 60.0
"""One minute of arc: 60 exam s, 3 s real at WELD_SCALE."""

MMA_PPE = ("welding_mask", "respirator", "ear_plugs", "welding_clothing", "welding_gloves", "safety_boots",
           "spats", "safety_helmet")
"""The 8 items of the revision's K11 sheet, by cabinet slot."""


async def take_ppe(ctx: Context, items: tuple[str, ...]) -> None:
    """Take each item out of its slot, then put it on (the examiner watches how)."""
    for item in items:
        ctx.cabinet.take(item)
        await ctx.hold(5)
    await ctx.hold(40)  # dresses: helmet checked and strapped, cuffs closed, spats over the instep


@scenario("weld-k11-complete-ppe", WELDING, "K11", 100, "scored",
          "All 8 MMA items taken from the cabinet (mask, respirator, ear plugs, clothing, gloves, boots, "
          "spats, helmet) and no sunglasses: K11-1a nothing; wearing faults are examiner marks, none "
          "marked: 40 + 60 = 100.", time_scale=WELD_SCALE)
async def weld_k11_complete_ppe(ctx: Context) -> None:
    await take_ppe(ctx, MMA_PPE)


@scenario("weld-k11-two-missing", WELDING, "K11", 90, "scored",
          "Ear plugs and spats left in the cabinet, the other 6 taken, no wrong item: K11-1a -5 x 2 = -10. "
          "40 - 10 + 60 = 90.", time_scale=WELD_SCALE)
async def weld_k11_two_missing(ctx: Context) -> None:
    await take_ppe(ctx, tuple(i for i in MMA_PPE if i not in ("ear_plugs", "spats")))


def hold_torch(ctx: Context, *, speed_mm_s: float = 3.5, arc_mm: float = 4.0, work_deg: float = 90.0,
               travel_deg: float = 15.0, offset_mm: float = 0.0) -> None:
    """How the candidate holds the electrode for the run. The good values sit in the middle of the
    MMA bands: speed 2-5 mm/s, arc length (weldsim.ctwd_mm) 2-6 mm, work angle 80-100 deg, travel
    angle 5-25 deg, offset -1.5..1.5 mm."""
    t = ctx.weldsim.torch
    t.travel_speed_mm_s, t.ctwd_mm, t.work_angle_deg = speed_mm_s, arc_mm, work_deg
    t.travel_angle_deg, t.position_offset_mm = travel_deg, offset_mm


async def mma_run(ctx: Context, **torch: float) -> None:
    """Earth clamp on the work, power on, torch set, arc for ARC_EXAM_S, arc out, power off."""
    ctx.power.earth_clamp_on = True
    await ctx.hold(5)
    ctx.power.power_on = True
    await ctx.hold(5)
    hold_torch(ctx, **torch)
    await ctx.hold(5)  # electrode over the start of the joint, mask down
    ctx.weldsim.trigger = True
    await ctx.hold(ARC_EXAM_S)
    ctx.weldsim.trigger = False
    await ctx.hold(5)
    ctx.power.power_on = False
    await ctx.hold(5)
    ctx.power.earth_clamp_on = False
    await ctx.hold(5)


@scenario("weld-k21-good-run", WELDING, "K21", 100, "scored",
          "Earth clamp on before the trigger (K21-2a nothing); for the whole 60 s arc: speed 3.5 mm/s (2-5), "
          "arc length 4 mm (2-6), work angle 90 (80-100), travel angle 15 (5-25), offset 0 (-1.5..1.5): "
          "every band_share 0; manual rows unmarked: 15 + 15 + 10 + 10 + 25 + 10 + 5 + 5 + 5 = 100.",
          time_scale=WELD_SCALE)
async def weld_k21_good_run(ctx: Context) -> None:
    await mma_run(ctx)


@scenario("weld-k21-travel-too-fast", WELDING, "K21", 90, "scored",
          "As the good run but travelling at 7 mm/s (above 2-5) for the whole arc: K21-6a share 1.0 x 10 = "
          "-10. 100 - 10 = 90.", time_scale=WELD_SCALE)
async def weld_k21_travel_too_fast(ctx: Context) -> None:
    await mma_run(ctx, speed_mm_s=7.0)


@scenario("weld-k21-arc-too-long", WELDING, "K21", 95, "scored",
          "As the good run but with a 9 mm arc (above 2-6 mm) for the whole arc: K21-9a share 1.0 x 5 = -5. "
          "100 - 5 = 95.", time_scale=WELD_SCALE)
async def weld_k21_arc_too_long(ctx: Context) -> None:
    await mma_run(ctx, arc_mm=9.0)
