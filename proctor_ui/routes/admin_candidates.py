"""Candidates (考生): the register with search, a CSV batch import, one candidate by form.

The import is the same as `examstation candidates import` (station.candidates: UTF-8 or GBK, every
line checked, nothing written when one is wrong): the upload is kept under the data directory,
the dry-run plan is shown, and only the administrator's confirmation registers it.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from proctor_ui.deps import Admin, Ui
from proctor_ui.templating import render
from station import maintenance
from station.candidates import CandidateFileError, import_candidates_csv
from station.errors import ServiceError

router = APIRouter()
OPERATIONS = ("低压电工作业", "熔化焊接与热切割作业")


def literal(text: str) -> str:
    """A message the templates show through `_()` as it is: not a catalog entry, and its `%` signs
    kept (the i18n extension %-formats what `_()` returns, and a `%` in a file or a name would break it)."""
    return text.replace("%", "%%")


def _uploads(data_dir: Path) -> Path:
    return data_dir / "candidate-uploads"


async def _page(request: Request, ui: Ui, q: str = "", status_code: int = 200, **extra: object) -> Response:
    rows = await asyncio.to_thread(maintenance.find_candidates, ui.services.db, q)
    ctx: dict[str, object] = {"rows": rows, "q": q, "operations": OPERATIONS, "form": {}, "errors": {},
                              "plan": None, "problems": None, "done": None}
    ctx.update(extra)
    return render(request, "admin/candidates.html", ctx, status_code=status_code)


@router.get("/candidates")
async def candidates(request: Request, ui: Ui, _user: Admin, q: str = "") -> Response:
    return await _page(request, ui, q)


@router.post("/candidates/import")
async def import_plan(request: Request, ui: Ui, _user: Admin, file: Annotated[UploadFile, File()]) -> Response:
    """Keep the upload and show what it would change (a dry run), or every problem of the file."""
    data = await file.read()
    token = secrets.token_hex(16)
    folder = _uploads(ui.data_dir)
    path = folder / f"{token}.csv"

    def store() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    await asyncio.to_thread(store)
    try:
        plan = await asyncio.to_thread(import_candidates_csv, ui.services, path, dry_run=True)
    except CandidateFileError as err:
        await asyncio.to_thread(path.unlink, True)
        return await _page(request, ui, problems=[literal(p) for p in err.problems], status_code=422)
    return await _page(request, ui, plan=str(plan).replace(str(path), file.filename or "upload.csv"), token=token)


@router.post("/candidates/import/{token}")
async def import_confirm(request: Request, ui: Ui, _user: Admin, token: str) -> Response:
    """Register the file whose plan was shown (checked again: the register may have changed since)."""
    if not token.isalnum() or len(token) != 32:
        return await _page(request, ui, problems=["上传的文件已不存在，请重新上传"], status_code=422)
    path = _uploads(ui.data_dir) / f"{token}.csv"
    if not await asyncio.to_thread(path.is_file):
        return await _page(request, ui, problems=["上传的文件已不存在，请重新上传"], status_code=422)
    try:
        report = await asyncio.to_thread(import_candidates_csv, ui.services, path)
    except CandidateFileError as err:
        return await _page(request, ui, problems=[literal(p) for p in err.problems], status_code=422)
    finally:
        await asyncio.to_thread(path.unlink, True)
    return await _page(request, ui, done=str(report).split("\n", 1)[0].split(": ", 1)[-1])


@router.post("/candidates")
async def register(request: Request, ui: Ui, _user: Admin, id_number: Annotated[str, Form()] = "",
                   name: Annotated[str, Form()] = "", operation: Annotated[str, Form()] = "",
                   batch: Annotated[str, Form()] = "", attempt_number: Annotated[str, Form()] = "1") -> Response:
    """One candidate by form; each wrong field comes back with its message."""
    form = {"id_number": id_number, "name": name, "operation": operation, "batch": batch,
            "attempt_number": attempt_number}
    errors: dict[str, str] = {}
    for field, value in (("id_number", id_number), ("name", name), ("batch", batch)):
        if not value.strip():
            errors[field] = "必填"
    if operation not in OPERATIONS:
        errors["operation"] = "请选择作业类别"
    if attempt_number not in ("1", "2"):
        errors["attempt_number"] = "只能是 1（初考）或 2（补考）"
    if not errors:
        try:
            await asyncio.to_thread(ui.services.registration.register_candidate, id_number.strip(), name.strip(),
                                    operation, batch.strip(), None, int(attempt_number))
        except ServiceError as err:
            errors["id_number"] = literal(str(err))
    if errors:
        return await _page(request, ui, form=form, errors=errors, status_code=422)
    return await _page(request, ui, q=id_number.strip(), done=f"{id_number.strip()} {name.strip()}")
