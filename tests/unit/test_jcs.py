"""The province's RFC 8785 canonicalisation against the rfc8785 package the station signs with.

Two independent implementations must agree byte for byte on everything a result document can
hold, or a province using one would reject results signed with the other.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware_sim import jcs

FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | FLOATS | st.text()
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5), max_leaves=30)


@settings(max_examples=600)
@given(VALUES)
def test_agrees_with_rfc8785(value: Any) -> None:
    assert jcs.dumps(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("x", [0.0, -0.0, 65.0, 25.8, 1e-7, 1e-6, 1.2345e-6, 1e-4, 9.999e15, 1e16,
                               3.910062346337995e16, 1e20, 1e21, 1.5e21, 5e-324, 1.7976931348623157e308, -3.25,
                               2.0**53, 123456789012345.6])
def test_numbers_at_the_edges_of_both_notations(x: float) -> None:
    assert jcs.dumps(x) == rfc8785.dumps(x)


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    doc = {"\U0001f600": 1, "\ufb01": 2, "a": 3, "考评员": 4}  # an astral key sorts before U+FB01 in UTF-16
    assert jcs.dumps(doc) == rfc8785.dumps(doc)
    assert jcs.dumps(doc).index("\U0001f600".encode()) < jcs.dumps(doc).index("\ufb01".encode())


def test_a_real_result_document() -> None:
    doc = {"items": [{"score": 65.0, "active_s": 107.3, "reason": "第一次通电试车不成功\n\"引号\"\u0001"}],
           "total": 65.0, "weight": 0.4, "passed": False, "evidence": [], "seq": 1}
    assert jcs.dumps(doc) == rfc8785.dumps(doc)
    assert json.loads(jcs.dumps(doc)) == json.loads(rfc8785.dumps(doc))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2**53, -(2**53), {1: "x"}, object()])
def test_what_has_no_canonical_form_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        jcs.dumps(bad)
