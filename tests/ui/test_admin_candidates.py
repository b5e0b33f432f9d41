"""Candidates page: register by form (field errors come back), import a GBK CSV: plan first, then confirm."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

Client = Callable[[str | None], TestClient]
GOOD = "11010519491231002X"


def test_register_by_form_and_find_by_search(client_for: Client) -> None:
    c = client_for("admin1")
    r = c.post("/candidates", data={"id_number": GOOD, "name": "张三", "operation": "低压电工作业",
                                     "batch": "2025-06-A", "attempt_number": "1"})
    assert r.status_code == 200 and "已登记" in r.text
    page = c.get("/candidates", params={"q": "张三"})
    assert GOOD in page.text and "2025-06-A" in page.text


def test_a_wrong_form_comes_back_with_each_fields_message(client_for: Client) -> None:
    c = client_for("admin1")
    r = c.post("/candidates", data={"id_number": "110105194912310021", "name": "", "operation": "潜水",
                                     "batch": "b", "attempt_number": "3"})
    assert r.status_code == 422
    assert "必填" in r.text and "请选择作业类别" in r.text and "只能是 1" in r.text
    r = c.post("/candidates", data={"id_number": "110105194912310021", "name": "李四", "operation": "低压电工作业",
                                     "batch": "b", "attempt_number": "1"})
    assert r.status_code == 422 and "110105194912310021" in r.text and "correct it" in r.text
    assert 'value="李四"' in r.text, "the form keeps what was typed"


def test_import_a_gbk_file_shows_the_plan_then_registers_on_confirm(client_for: Client) -> None:
    c = client_for("admin1")
    csv = f"id_number,name,operation,batch\n{GOOD},王五,低压电工作业,2025-06-B\n".encode("gbk")
    plan = c.post("/candidates/import", params={"csrf": c.headers["X-CSRF-Token"]},
                  files={"file": ("名单.csv", csv, "text/csv")})
    assert plan.status_code == 200 and "would register 1 new" in plan.text
    assert "王五" not in c.get("/candidates").text.split("<tbody>")[1], "a plan registers nothing"
    token = plan.text.split('action="/candidates/import/')[1].split('"')[0]
    done = c.post(f"/candidates/import/{token}")
    assert done.status_code == 200 and "registered 1 new" in done.text
    assert "王五" in c.get("/candidates", params={"q": "王五"}).text
    again = c.post(f"/candidates/import/{token}")
    assert again.status_code == 422 and "重新上传" in again.text


def test_a_wrong_file_lists_its_problems_and_registers_nothing(client_for: Client) -> None:
    c = client_for("admin1")
    csv = b"id_number,name,batch\n1,2,3\n"
    r = c.post("/candidates/import", params={"csrf": c.headers["X-CSRF-Token"]},
               files={"file": ("bad.csv", csv, "text/csv")})
    assert r.status_code == 422 and "lacks operation" in r.text
