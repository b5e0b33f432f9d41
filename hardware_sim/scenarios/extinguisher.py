"""低压电工作业 K43 灭火器的选择和使用 on the electrician station's extinguisher trainer.

Expected scores follow item K43 of scoring/rubrics/lv-electrician-2015.yaml. The candidate works
the way the sheets teach, 提 拔 握 压: take the extinguisher, pull the pin, hold the hose and aim at
the flame root from 2 m, squeeze. The aim is held for the whole discharge, so the proportional
aim and distance rows see a share of exactly 0 or 1 of the discharge time. The manual rows (raising
the alarm, judging the class, checking the gauge, standing upwind, checking for embers) are
untouched: an examiner who marks nothing leaves them full.
"""

from __future__ import annotations

from collections.abc import Callable

from hardware_sim.scenarios.base import ELECTRICIAN, Context, scenario

FIRE_SCALE = 10.0
DISTANCE_CM = 200
"""Inside the 1-3 m the K43-4d row asks for."""


def fire(fire_class: str) -> Callable[[Context], None]:
    """Setup: the examiner sets the trainer's fire class before the item."""

    def setup(ctx: Context) -> None:
        ctx.extinguisher.fire_class = fire_class

    return setup


async def get_ready(ctx: Context, kind: str) -> None:
    """提 拔 握: take the extinguisher, pull the pin, hold the hose; walk up to 2 m from the fire."""
    ex = ctx.extinguisher
    ex.choose(kind)
    await ctx.hold(3)  # checks the gauge and the seal, walks up to the fire upwind
    ex.pin_pulled = True
    await ctx.hold(1)
    ex.hose_held = True
    ex.aim_at("flame_root", DISTANCE_CM)
    await ctx.hold(1)


async def discharge(ctx: Context, zone: str, exam_s: float) -> None:
    """压: squeeze the lever with the jet on `zone` for `exam_s`, then let go."""
    ex = ctx.extinguisher
    ex.aim_at(zone, DISTANCE_CM)
    ex.squeezing = True
    await ctx.hold(exam_s)
    ex.squeezing = False
    await ctx.hold(2)


async def finish(ctx: Context) -> None:
    ctx.extinguisher.hose_held = False
    await ctx.hold(2)  # checks for embers, puts the extinguisher back (the examiner's row)


@scenario("extinguisher-right-type", ELECTRICIAN, "K43", 100, "scored",
          "B-class (oil) fire; dry powder ABC chosen (suitable for B: K43-2a nothing, K43-V1 nothing), pin "
          "pulled before the hose is held (K43-4a nothing), hose held before squeezing (K43-4e nothing), "
          "the jet on the flame root from 200 cm for the whole discharge (K43-4c share 0, K43-4d share 0); "
          "the fire is out after 4 s (25 %/s at the root) and the candidate stops squeezing 3 s later "
          "(K43-5a nothing). Manual rows unmarked: 10 + 20 + 10 + 45 + 15 = 100.",
          time_scale=FIRE_SCALE, setup=fire("B_liquid"))
async def extinguisher_right_type(ctx: Context) -> None:
    await get_ready(ctx, "dry_powder_abc")
    await discharge(ctx, "flame_root", 7)
    await finish(ctx)


@scenario("extinguisher-wrong-type", ELECTRICIAN, "K43", 70, "scored",
          "Water on a B-class (oil) fire: water is not suitable for B, K43-2a -20 (the whole selection "
          "row); it is not the E-class water/foam case, so the veto K43-V1 (which allows every agent on "
          "A-C) does not fire and the item is scored. The jet is on the root from 200 cm for the whole "
          "discharge (K43-4c, K43-4d share 0) and the order 提拔握压 is right, but water never puts an oil "
          "fire out: the extinguisher runs empty after 12.5 s, K43-5a -10. 100 - 20 - 10 = 70.",
          time_scale=FIRE_SCALE, setup=fire("B_liquid"))
async def extinguisher_wrong_type(ctx: Context) -> None:
    await get_ready(ctx, "water")
    await discharge(ctx, "flame_root", 15)  # empties at 8 %/s after 12.5 s, the fire still burning
    await finish(ctx)


@scenario("extinguisher-water-on-electrical", ELECTRICIAN, "K43", 0, "veto",
          "Water on an energised electrical (E-class) fire: veto K43-V1 (only dry powder or CO2 are allowed "
          "on class E): the item scores 0 and the practical exam is failed, whatever the rows say (K43-2a "
          "-20 and K43-5a -10 are also found).", time_scale=FIRE_SCALE, setup=fire("E_electrical"))
async def extinguisher_water_on_electrical(ctx: Context) -> None:
    await get_ready(ctx, "water")
    await discharge(ctx, "flame_root", 15)
    await finish(ctx)


@scenario("extinguisher-aimed-at-top", ELECTRICIAN, "K43", 75, "scored",
          "B-class fire, dry powder ABC (right type), right order, 200 cm, but the jet is on the top of the "
          "flame for the whole discharge: aim_zone 3 outside the root band [1, 1] for 100 % of the "
          "discharge time, K43-4c -15 x 1.0 = -15; at the top the fire falls 1 %/s, so it is still "
          "burning when the extinguisher runs empty after 12.5 s, K43-5a -10. 100 - 15 - 10 = 75.",
          time_scale=FIRE_SCALE, setup=fire("B_liquid"))
async def extinguisher_aimed_at_top(ctx: Context) -> None:
    await get_ready(ctx, "dry_powder_abc")
    await discharge(ctx, "flame_top", 15)
    await finish(ctx)
