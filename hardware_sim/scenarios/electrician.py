"""低压电工作业 K2 scenarios on the wiring bench: K21, K22, K23 done right and done wrong.

Expected scores follow scoring/rubrics/lv-electrician-2015.yaml; each scenario's arithmetic names
the rows it loses points on. Manual rows (oral answers, workmanship) are untouched: an examiner
who marks nothing leaves them full.
"""

from __future__ import annotations

from hardware_sim.models.bench import Wiring
from hardware_sim.scenarios.base import ELECTRICIAN, Context, scenario


def task(number: int, wiring: Wiring = Wiring.CORRECT):  # type: ignore[no-untyped-def]
    def setup(ctx: Context) -> None:
        ctx.bench.task = number
        ctx.bench.wiring = wiring

    return setup


async def meter_check(ctx: Context) -> None:
    """Check the de-energised circuit with the meter: leads on the terminals for a while."""
    ctx.bench.meter_probe = True
    await ctx.hold(20)
    ctx.bench.meter_probe = False
    await ctx.hold(1)


async def self_check(ctx: Context) -> None:
    """Press the bench's 检测 key and wait for its verdict (2 s)."""
    ctx.bench.start_check()
    await ctx.hold(4)


async def power_on(ctx: Context) -> None:
    ctx.bench.main_switch = True
    await ctx.hold(2)


async def power_off(ctx: Context) -> None:
    ctx.bench.main_switch = False
    await ctx.hold(2)


async def k21_trial_run(ctx: Context) -> None:
    """Jog, continuous run, stop: the K21 trial run."""
    await ctx.tap("sb3_jog", 2)
    await ctx.tap("sb2_start", 1)
    await ctx.hold(15)
    await ctx.tap("sb1_stop", 1)


@scenario("k21-correct", ELECTRICIAN, "K21", 100, "scored",
          "Meter check before power-on, self-check passes first time, jog, run and stop shown, no trip: "
          "every automatic row keeps its points: 25 + 10 + 40 + 15 + 10 = 100.", setup=task(21))
async def k21_correct(ctx: Context) -> None:
    await meter_check(ctx)
    await self_check(ctx)
    await power_on(ctx)
    await k21_trial_run(ctx)
    await power_off(ctx)


@scenario("k21-short-circuit", ELECTRICIAN, "K21", 65, "scored",
          "Wired with a short circuit: the self-check says 不合格 (fault 2) before it ever says 合格, "
          "K21-3a -20; the candidate powers on anyway and the breaker trips once, K21-3g -15; after "
          "rewiring everything else is right. 100 - 20 - 15 = 65.",
          setup=task(21, Wiring.SHORT_CIRCUIT))
async def k21_short_circuit(ctx: Context) -> None:
    await meter_check(ctx)
    await self_check(ctx)
    await power_on(ctx)  # the short-circuit protection trips at once
    ctx.bench.reset_protection()  # the examiner resets the breaker
    ctx.bench.wiring = Wiring.CORRECT  # the candidate finds and fixes the fault
    await ctx.hold(30)
    await self_check(ctx)
    await power_on(ctx)
    await k21_trial_run(ctx)
    await power_off(ctx)


@scenario("k21-no-meter-check", ELECTRICIAN, "K21", 90, "scored",
          "Everything right but the circuit was never checked with the meter before the main switch "
          "closed: K21-2a -10. 100 - 10 = 90.", setup=task(21))
async def k21_no_meter_check(ctx: Context) -> None:
    await self_check(ctx)
    await power_on(ctx)
    await k21_trial_run(ctx)
    await power_off(ctx)
