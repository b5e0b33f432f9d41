"""Exact points: whole hundredths from detector to item score, an exact fraction for the total.

A certificate depends on whether the total reaches the pass mark, so nothing on the way may round
in the candidate's favour or against it: row points, deductions and item scores are integers of
hundredths (rubric numbers are validated to have at most two decimals), a proportional deduction
is rounded to the nearest hundredth once (a tie goes to the candidate), and the weighted total is
an exact Fraction compared with the pass mark as it is. Rounding happens for display only, and
then downwards (`shown_total`), so a total shown as 80.00 always means the mark was reached.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from fractions import Fraction

PER_POINT = 100
"""Hundredths in a point."""


def to_hundredths(points: float | int | str, what: str) -> int:
    """`points` as whole hundredths; ValueError naming `what` when it has more than two decimals
    (25.005) or is not a finite number."""
    try:
        exact = Decimal(repr(points) if isinstance(points, float) else str(points))
    except InvalidOperation:
        raise ValueError(f"{what}: {points!r} is not a number") from None
    if not exact.is_finite():
        raise ValueError(f"{what}: {points!r} is not a finite number")
    scaled = exact * PER_POINT
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{what}: {points!r} has more than two decimals; points are kept in hundredths")
    return int(scaled)


def exact(number: float | int) -> Fraction:
    """A rubric number (a weight, the pass mark) as the decimal it was written as: 0.2 is 1/5, not
    the binary float nearest to it."""
    return Fraction(Decimal(repr(number) if isinstance(number, float) else str(number)))


def shown(hundredths: int) -> float:
    """Hundredths as the number printed on a sheet (65.0, 99.99)."""
    return hundredths / PER_POINT


def share_of(points_h: int, share: Fraction) -> int:
    """`share` (0..1) of `points_h`, to the nearest hundredth; an exact half goes to the candidate."""
    share = min(Fraction(1), max(Fraction(0), share))
    return math.ceil(points_h * share - Fraction(1, 2))


def weighted_total(scores: Iterable[tuple[Fraction, int]]) -> Fraction:
    """The subject-weighted mean of item scores, `sum(w x score) / sum(w)`, in points, exactly
    (for a full paper the weights add up to 1 and this is the weighted sum)."""
    pairs = list(scores)
    weights = sum((w for w, _ in pairs), Fraction(0))
    if weights == 0:
        return Fraction(0)
    return sum((w * h for w, h in pairs), Fraction(0)) / weights / PER_POINT


def shown_total(total: Fraction) -> float:
    """The exact total cut (never rounded up) to two decimals: 79.998 shows as 79.99."""
    return math.floor(total * PER_POINT) / PER_POINT
