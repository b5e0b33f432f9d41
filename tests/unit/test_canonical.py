"""The one canonical JSON (scoring.canonical) against the `rfc8785` package.

Every hash and signature is computed over this text, so it must be RFC 8785 byte for byte
wherever RFC 8785 is defined, whichever of its two paths a value takes; beyond that (integers
past 2**53, which RFC 8785 refuses) it writes every digit.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.canonical import CanonicalError, canonical_bytes, canonical_json

FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(alphabet=st.characters(codec="utf-8"))  # astral characters included, no lone surrogates
SCALARS = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | FLOATS | TEXT
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5), max_leaves=30)


@settings(max_examples=1500)
@given(VALUES)
def test_is_rfc8785_wherever_rfc8785_is_defined(value: Any) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("f", [0.1, 12.0, -0.0, 1e-4, 9.99e-5, 1e-7, 1e-6, 1.5e-300, 5e-324, 1e15 + 0.5,
                               1e16, 1e20, 1e21, 1e22, 1.7976931348623157e308, 2.0**53, 123456.789])
def test_floats_at_the_edges_of_the_fast_path(f: float) -> None:
    for v in (f, -f, [f], {"x": f}):
        assert canonical_bytes(v) == rfc8785.dumps(v), v


def test_member_names_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+E000; by code point it sorts after
    doc = {"\ue000": 1, "\U0001F600": 2, "a": 3, "考评员": 4}
    assert canonical_bytes(doc) == rfc8785.dumps(doc)
    assert list(json.loads(canonical_json(doc))) == ["a", "考评员", "\U0001F600", "\ue000"]


@pytest.mark.parametrize("n", [2**53, -(2**53), 1_796_400_000_123_456_789, 2**70])
def test_integers_beyond_ieee_doubles_are_written_with_every_digit(n: int) -> None:
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps(n)
    assert canonical_json(n) == str(n)
    assert canonical_json({"t_utc_ns": n, "x": 1e-5}) == f'{{"t_utc_ns":{n},"x":0.00001}}'  # both paths
    assert json.loads(canonical_json({"t": n}))["t"] == n


def test_tuples_are_arrays_and_enums_their_values() -> None:
    from enum import StrEnum

    class Kind(StrEnum):
        A = "a"

    assert canonical_json({"k": Kind.A, "t": (1, 2.5)}) == '{"k":"a","t":[1,2.5]}'


@pytest.mark.parametrize(("value", "named"), [
    ({"a": [1, math.nan]}, "$.a[1]"), ({"b": math.inf}, "$.b"), ({1: "x"}, "member name 1"),
    ({"s": {1, 2}}, "$.s: a set"), ({"b": b"raw"}, "$.b: a bytes"),
    ({"\U0001F600": math.nan}, "$.\U0001F600"),  # the same message from the complete path
])
def test_what_json_cannot_hold_is_refused_naming_where(value: Any, named: str) -> None:
    with pytest.raises(CanonicalError, match=named.replace("[", r"\[").replace("]", r"\]").replace("$", r"\$")):
        canonical_json(value)
