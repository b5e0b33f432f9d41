"""The one canonical JSON of examstation: what every hash and signature is computed over.

It is RFC 8785 (JSON Canonicalization Scheme): members sorted by their UTF-16 code units, no
whitespace, strings with only the escapes JSON requires, numbers as ECMAScript prints them (12.0
is `12`, 1e-05 is `0.00001`). Equal JSON values give equal bytes, so a digest over the text is a
digest over the value, and the province can re-check a signature with any RFC 8785 library.

One deviation, for our own records only: an integer beyond ±(2**53 - 1) is written with all its
digits. RFC 8785 refuses such integers (I-JSON numbers are doubles), but the audit chain and the
timelines carry UTC nanoseconds (~1.8e18). Documents that leave the station (signed results,
receipts) hold no such integer, so for them this is exactly RFC 8785; `tests/unit/test_canonical.py`
checks it against the `rfc8785` package.

Why not `rfc8785.dumps` alone: it refuses the nanoseconds, and, in pure Python, it takes about
twice as long per sample record (12 us against 6.5 us here) as the C `json` encoder that does the
common case (every sample a station records). The fast path is used only when its output is
provably the same: every float is integral up to 2**53 (written as that integer) or in
[1e-4, 1e16), where Python's shortest repr and ECMAScript's agree; no member name has a
character outside the BMP (where code-point order and UTF-16 order differ). Anything else takes
the complete path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import rfc8785

_INT_DOMAIN = 2**53 - 1
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode


class CanonicalError(ValueError):
    """A value JSON cannot hold (NaN, infinity, a non-string member name, a set ...); names where."""


class _Slow(Exception):
    """The fast path cannot promise RFC 8785 output for this value."""


def canonical_json(value: Any) -> str:
    """The canonical text of `value` (dicts, lists, tuples, str, int, float, bool, None)."""
    try:
        return _ENCODE(_fast(value, "$"))
    except _Slow:
        return _complete(value, "$")


def canonical_bytes(value: Any) -> bytes:
    """`canonical_json(value)` as UTF-8: what signatures are computed over."""
    return canonical_json(value).encode("utf-8")


def _fast(value: Any, where: str) -> Any:
    """`value` with integral floats as ints, ready for the C encoder; _Slow when it would differ."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return _fast_float(value, where)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise CanonicalError(f"{where}: member name {k!r} is not a string")
            if not k.isascii() and max(k) > "\uffff":
                raise _Slow
            out[k] = _fast(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_fast(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise CanonicalError(f"{where}: a {type(value).__name__} is not JSON")


def _fast_float(f: float, where: str) -> int | float:
    if not math.isfinite(f):
        raise CanonicalError(f"{where}: {f} is not a JSON number (NaN and infinities are refused)")
    if f.is_integer():
        if abs(f) <= 2**53:  # exact integers: ECMAScript prints each as its digits
            return int(f)
        raise _Slow
    if 1e-4 <= abs(f) < 1e16:  # both print the shortest round-trip digits, without an exponent
        return f
    raise _Slow


def _complete(value: Any, where: str) -> str:
    if value is None or isinstance(value, (str, bool)):
        return rfc8785.dumps(value).decode("utf-8")
    if isinstance(value, int):
        return str(value) if abs(value) > _INT_DOMAIN else rfc8785.dumps(value).decode("utf-8")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalError(f"{where}: {value} is not a JSON number (NaN and infinities are refused)")
        return rfc8785.dumps(value).decode("utf-8")
    if isinstance(value, Mapping):
        for k in value:
            if not isinstance(k, str):
                raise CanonicalError(f"{where}: member name {k!r} is not a string")
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_complete(k, where) + ":" + _complete(value[k], f"{where}.{k}") for k in keys) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_complete(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    raise CanonicalError(f"{where}: a {type(value).__name__} is not JSON")
