"""The items that complete a four-subject exam: K1 safety tools, K3 hazards, and CPR on the
welding station, so `examstation demo --exam` can run a whole paper of each operation type.

K31 is judged by the examiner alone (the candidate names hazards in a staged site or on
pictures): no device reports it, so with no marks it keeps its points.
"""

from __future__ import annotations

from hardware_sim.scenarios.base import ELECTRICIAN, WELDING, Context, scenario
from hardware_sim.scenarios.cpr import CPR_SCALE, cpr


@scenario("k12-insulating-ppe", ELECTRICIAN, "K12", 100, "scored",
          "Insulating gloves, insulating boots and the safety helmet taken from the cabinet, sunglasses "
          "left: K12-1a nothing; inspecting and using the tools are examiner marks, none marked: "
          "30 + 30 + 40 = 100.")
async def k12_insulating_ppe(ctx: Context) -> None:
    for item in ("insulating_gloves", "insulating_boots", "safety_helmet"):
        ctx.cabinet.take(item)
        await ctx.hold(5)
    await ctx.hold(60)  # inspects the gloves for leaks, tests the voltage detector, puts them on


@scenario("k31-hazard-oral", ELECTRICIAN, "K31", 100, "scored",
          "Hazards named orally in front of the examiner; every row is an examiner mark and none is "
          "marked: the item keeps its 100 points.")
async def k31_hazard_oral(ctx: Context) -> None:
    await ctx.wait(120)


@scenario("weld-k31-hazard-oral", WELDING, "K31", 100, "scored",
          "Hazards named orally in the staged welding booth; examiner marks only, none marked: 100.")
async def weld_k31_hazard_oral(ctx: Context) -> None:
    await ctx.wait(120)


@scenario("weld-k41-cpr-correct", WELDING, "K41", 100, "scored",
          "The welding paper's K41 is the same CPR sheet as the electrician's K42; the same correct "
          "performance as cpr-correct: no deduction, 100.", time_scale=CPR_SCALE)
async def weld_k41_cpr_correct(ctx: Context) -> None:
    await cpr(ctx)
