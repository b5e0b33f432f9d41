"""The site-administration pages, one module per thing an administrator does; this router includes them.

- candidates (admin_candidates): the register, a CSV batch import (plan first, then confirm), one by form;
- results (admin_results): search, the signed document, the evidence bundle (every role reads them);
- outbox (admin_outbox): delivery state per result, retry a rejected one;
- audit (admin_audit): the latest entries, and verifying the whole record;
- users (admin_users): add, assign stations, disable (which signs the user out everywhere).
Every change goes through the station service that audits it.
"""

from __future__ import annotations

from fastapi import APIRouter

from proctor_ui.routes import admin_audit, admin_candidates, admin_outbox, admin_results, admin_users

router = APIRouter()
for _module in (admin_candidates, admin_results, admin_outbox, admin_audit, admin_users):
    router.include_router(_module.router)
