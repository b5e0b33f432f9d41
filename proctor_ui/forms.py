"""Form input of the exam pages, checked before any service is called: a wrong field gets the form
back with that field's message (422), never a 500 and never FastAPI's JSON error.

Why by hand and not with FastAPI's `Form(max_length=...)` validation: that answers a bad field with
a JSON body an htmx form cannot show beside the field. Routes declare their fields as optional
strings (so the OpenAPI schema still lists them) and check them here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proctor_ui.i18n import gettext as _
from station.users import MIN_PASSWORD_CHARS

TEXT_MAX = 500
"""Longest reason or note accepted (the audit log keeps every one)."""


class FormError(Exception):
    """One or more fields are wrong: field name -> message, shown beside the field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Fields:
    """Collects the messages of every wrong field, so the person sees them all at once."""

    errors: dict[str, str] = field(default_factory=dict)

    def text(self, name: str, value: str, *, required: bool = True, max_len: int = TEXT_MAX,
             missing: str = "") -> str:
        v = value.strip()
        if required and not v:
            self.errors[name] = missing or _("请填写此项")
        elif len(v) > max_len:
            self.errors[name] = _("最多 %(n)s 个字符") % {"n": max_len}
        return v

    def choice(self, name: str, value: str, allowed: list[str] | tuple[str, ...]) -> str:
        v = value.strip()
        if v not in allowed:
            self.errors[name] = _("请从列表中选择")
        return v

    def integer(self, name: str, value: str, low: int, high: int) -> int:
        try:
            n = int(value.strip())
        except ValueError:
            self.errors[name] = _("请填写整数")
            return low
        if not low <= n <= high:
            self.errors[name] = _("应在 %(a)s 到 %(b)s 之间") % {"a": low, "b": high}
        return n

    def number(self, name: str, value: str, low: float, high: float) -> float:
        try:
            x = float(value.strip())
        except ValueError:
            self.errors[name] = _("请填写数字")
            return low
        if not low <= x <= high or x != x:
            self.errors[name] = _("应在 %(a)s 到 %(b)s 之间") % {"a": f"{low:g}", "b": f"{high:g}"}
        return x

    def check(self) -> None:
        """Raise FormError when any field was wrong."""
        if self.errors:
            raise FormError(dict(self.errors))


def new_password_errors(password: str, password2: str) -> dict[str, str]:
    """A new password typed twice (adding a user, resetting or changing one): too short, or the two
    differ. The messages are Chinese msgids the templates translate (proctor_ui/locale/dynamic_msgids.py)."""
    if len(password) < MIN_PASSWORD_CHARS:
        return {"password": "密码太短"}
    if password != password2:
        return {"password2": "两次输入的密码不一致"}
    return {}
