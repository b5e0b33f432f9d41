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


# --- K22 三相异步电动机正反转 ------------------------------------------------------------------------

async def k22_trial_run(ctx: Context) -> None:
    """Forward, the interlock shown (SB4 refused while running forward), stop, reverse, stop."""
    await ctx.tap("sb2_start", 1)  # forward: KM1 pulls in and holds
    await ctx.hold(5)
    await ctx.tap("sb4_reverse", 1)  # interlock: KM1's NC contact keeps KM2 out, still forward
    await ctx.hold(2)
    await ctx.tap("sb1_stop", 1)
    await ctx.tap("sb4_reverse", 1)  # reverse: KM2 pulls in and holds
    await ctx.hold(5)
    await ctx.tap("sb1_stop", 1)


@scenario("k22-correct", ELECTRICIAN, "K22", 100, "scored",
          "Meter check before power-on, self-check passes first time (no interlock or PE fault reported), "
          "forward, reverse and stop shown, no trip, no overtime: every automatic deduction stays at 0 and "
          "the manual rows are unmarked: 25 + 10 + 40 + 15 + 10 = 100.", time_scale=20, setup=task(22))
async def k22_correct(ctx: Context) -> None:
    await meter_check(ctx)
    await self_check(ctx)
    await power_on(ctx)
    await k22_trial_run(ctx)
    await power_off(ctx)


@scenario("k22-short-circuit", ELECTRICIAN, "K22", 65, "scored",
          "Wired with a short circuit: the self-check says 不合格 (fault 2, not the interlock fault 4) before "
          "it ever says 合格, K22-3a -20; the candidate powers on anyway and the breaker trips once, K22-3f "
          "-15; after rewiring the forward/reverse run is right. Row K22-3 40 - 20 - 15 = 5; "
          "100 - 20 - 15 = 65.", time_scale=20, setup=task(22, Wiring.SHORT_CIRCUIT))
async def k22_short_circuit(ctx: Context) -> None:
    await meter_check(ctx)
    await self_check(ctx)
    await power_on(ctx)  # the short-circuit protection trips at once
    ctx.bench.reset_protection()
    ctx.bench.wiring = Wiring.CORRECT
    await ctx.hold(30)
    await self_check(ctx)
    await power_on(ctx)
    await k22_trial_run(ctx)
    await power_off(ctx)


@scenario("k22-no-meter-check", ELECTRICIAN, "K22", 90, "scored",
          "Everything right but the main switch closed without a meter check of the circuit: K22-2a -10. "
          "100 - 10 = 90.", time_scale=20, setup=task(22))
async def k22_no_meter_check(ctx: Context) -> None:
    await self_check(ctx)
    await power_on(ctx)
    await k22_trial_run(ctx)
    await power_off(ctx)


# --- K23 单相电能表带照明灯 ------------------------------------------------------------------------

LAMP_ON_EXAM_S = 60.0
"""60 W at 3200 imp/kWh is 0.0533 pulses per second: 60 s of lamp gives 3 meter pulses."""


async def k23_trial_run(ctx: Context) -> None:
    """Switch the lamp on, let the meter count, switch it off."""
    ctx.bench.lamp_switch = True
    await ctx.hold(LAMP_ON_EXAM_S)
    ctx.bench.lamp_switch = False
    await ctx.hold(2)


@scenario("k23-correct", ELECTRICIAN, "K23", 100, "scored",
          "Meter check before power-on, self-check passes first time, the lamp lights under its switch and "
          "burns 60 s, so the meter counts 3 pulses (60 W x 60 s x 3200 imp/kWh = 3.2); no trip, no "
          "overtime: 30 + 10 + 40 + 10 + 10 = 100.", time_scale=20, setup=task(23))
async def k23_correct(ctx: Context) -> None:
    await meter_check(ctx)
    await self_check(ctx)
    await power_on(ctx)
    await k23_trial_run(ctx)
    await power_off(ctx)


@scenario("k23-short-circuit", ELECTRICIAN, "K23", 65, "scored",
          "Wired with a short circuit: the self-check says 不合格 before it says 合格, K23-3a -20; powered "
          "on anyway, the breaker trips once, K23-3d -15; after rewiring the lamp lights and the meter "
          "counts. Row K23-3 40 - 20 - 15 = 5; 100 - 20 - 15 = 65.",
          time_scale=20, setup=task(23, Wiring.SHORT_CIRCUIT))
async def k23_short_circuit(ctx: Context) -> None:
    await meter_check(ctx)
    await self_check(ctx)
    await power_on(ctx)  # trips at once
    ctx.bench.reset_protection()
    ctx.bench.wiring = Wiring.CORRECT
    await ctx.hold(30)
    await self_check(ctx)
    await power_on(ctx)
    await k23_trial_run(ctx)
    await power_off(ctx)


@scenario("k23-no-meter-check", ELECTRICIAN, "K23", 90, "scored",
          "Everything right but the main switch closed without a meter check: K23-2a -10. 100 - 10 = 90.",
          time_scale=20, setup=task(23))
async def k23_no_meter_check(ctx: Context) -> None:
    await self_check(ctx)
    await power_on(ctx)
    await k23_trial_run(ctx)
    await power_off(ctx)


# --- K21 ended by its clock, and a bench that loses power ------------------------------------------

@scenario("k21-timeout", ELECTRICIAN, "K21", 60, "timeout",
          "The candidate checks the circuit with the meter and runs the self-check (合格), then spends the "
          "rest of the 30 min reworking the wiring and never closes the main switch: the item ends at its "
          "limit. K21-2a nothing (the main switch never closed, so it was not closed before the meter "
          "check); K21-3b -40 (motor never ran), K21-3c -10, K21-3d -10, K21-3f -10: 70 taken from a 40 "
          "point row, K21-3 = 0; K21-4c nothing (ended at the limit, not over it). "
          "25 + 10 + 0 + 15 + 10 = 60.", time_scale=200, setup=task(21))
async def k21_timeout(ctx: Context) -> None:
    await meter_check(ctx)
    await self_check(ctx)
    await ctx.wait(3600)  # still reworking the terminals when the clock runs out


@scenario("k21-bench-dropout", ELECTRICIAN, "K21", 100, "scored",
          "After the meter check and a passing self-check the bench loses power for 20 s: the item pauses "
          "and resumes when it answers again; the candidate waits, then powers on and shows jog, run and "
          "stop. The bench was down for over 10 % of the item, so the examiner must choose at the end: "
          "score it with the gap (the candidate only waited). No finding falls in the gap, nothing is "
          "unverified: 25 + 10 + 40 + 15 + 10 = 100.", setup=task(21),
          score_with_gap="考台断电 20 s，考生停止操作等待，考评员全程在场")
async def k21_bench_dropout(ctx: Context) -> None:
    await meter_check(ctx)
    await self_check(ctx)
    await ctx.power_off("bench")
    await ctx.wait(20)
    await ctx.power_on("bench")
    await ctx.hold(3)  # the controller reconnects (a few 100 ms polls)
    await power_on(ctx)
    await k21_trial_run(ctx)
    await power_off(ctx)


@scenario("k21-bench-dies", ELECTRICIAN, "K21", 0, "interrupted",
          "The bench loses power after the candidate has powered on and jogged the motor, and never comes "
          "back: when the candidate stops, a device is still offline, so the item ends interrupted and "
          "scores 0 whatever the rows say.", setup=task(21))
async def k21_bench_dies(ctx: Context) -> None:
    await meter_check(ctx)
    await self_check(ctx)
    await power_on(ctx)
    await ctx.tap("sb3_jog", 2)
    await ctx.power_off("bench")
    await ctx.wait(20)


@scenario("k21-motor-overload", ELECTRICIAN, "K21", 0, "veto",
          "The candidate runs the motor with the load brake on (overload): after 3 s the thermal relay "
          "FR trips, which the rubric treats as damaging the motor, 否决项 K21-V1: the controller stops "
          "the item at once (veto_stop) and it scores 0, whatever the rows say; the exam is failed.",
          setup=task(21))
async def k21_motor_overload(ctx: Context) -> None:
    await meter_check(ctx)
    await self_check(ctx)
    await power_on(ctx)
    ctx.bench.overload = True
    await ctx.tap("sb2_start", 1)
    await ctx.hold(60)  # the item is stopped by the veto long before this ends
    await ctx.tap("sb1_stop", 1)
