"""Chinese strings the templates translate through a variable, listed so the catalog keeps them.

Why this file: pybabel extracts only literal arguments (`_("考场")`); a template that writes
`{{ _(error) }}` or `{{ _(c.label_zh) }}` translates a string defined somewhere else (a route's
form error, a discipline category in station/discipline.py), which extraction cannot see, so
`pybabel update` would drop its English as obsolete. scripts/update-translations.sh extracts this
file with the rest (babel.cfg: proctor_ui/**.py); nothing imports it. When a route or station
module adds a message that a template shows through `_()`, add it here too.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """gettext's conventional marker: extracted, returned as it is (the template translates it)."""
    return message


DISCIPLINE_CATEGORIES = (N_("夹带"), N_("替考嫌疑"), N_("交谈"), N_("使用通讯工具"), N_("离开考位"), N_("其他"))
"""station.discipline.CATEGORIES labels (the discipline form and the review page show them)."""
ROLES = (N_("站点管理员"), N_("考评员"), N_("监考员"))
"""base.html names the signed-in user's role through a dict lookup."""
LOGIN = (N_("用户名或密码错误"),)
"""proctor_ui.routes.auth_routes.REFUSED (login.html shows `_(error)`)."""
FORM_ERRORS = (
    N_("必填"), N_("请选择作业类别"), N_("只能是 1（初考）或 2（补考）"), N_("上传的文件已不存在，请重新上传"),
    N_("请选择角色"), N_("密码太短"), N_("两次输入的密码不一致"),
    N_("日期格式应为 2025-06-01"), N_("没有这个考位"), N_("当前密码错误"), N_("新密码与当前密码相同"),
)
"""The admin pages' and the password page's field errors (routes/admin_candidates.py, admin_users.py,
admin_results.py, account.py)."""
