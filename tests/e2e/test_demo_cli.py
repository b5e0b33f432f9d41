"""The CLI contract around a stored attempt: `demo --exam ... --once --json` prints the signed
result of a full four-subject paper, `replay` re-scores it to the identical sheet, `keys export`
verifies its signature, and `audit verify` reports a flipped byte in an audit, result or timeline
row with its table."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from station.signing import verify

EXAM = "k12-insulating-ppe,k21-short-circuit,k31-hazard-oral,cpr-too-shallow"
pytestmark = pytest.mark.xdist_group("demo-cli")  # one worker runs the module fixture's exam once


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "station.cli", *args, "--config", "examples/site.yaml"],
                          capture_output=True, text=True, check=check, timeout=180)


@pytest.fixture(scope="module")
def exam(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    data = tmp_path_factory.mktemp("exam")
    out = cli("demo", "--exam", EXAM, "--once", "--json", "--data-dir", str(data)).stdout
    return data, json.loads(out)


@pytest.mark.timeout(200)
def test_four_subject_paper_is_weighted_and_passes_at_80(exam: tuple[Path, dict[str, object]]) -> None:
    data, doc = exam
    items = {i["code"]: (i["score"], i["outcome"]) for i in doc["items"]}  # type: ignore[attr-defined]
    assert items == {"K12": (100, "scored"), "K21": (65, "scored"), "K31": (100, "scored"), "K42": (70, "scored")}
    # 0.2 x 100 + 0.4 x 65 + 0.2 x 100 + 0.2 x 70 = 80: exactly the pass mark
    assert (doc["total"], doc["passed"], doc["veto_failed"], doc["complete"]) == (80.0, True, False, True)
    assert doc["signed_by"] == ["演示考评员甲", "演示考评员乙"]
    public = cli("keys", "export", "--data-dir", str(data)).stdout
    assert verify(doc, public)


@pytest.mark.timeout(200)
def test_replay_reproduces_the_stored_sheet(exam: tuple[Path, dict[str, object]]) -> None:
    data, doc = exam
    out = json.loads(cli("replay", str(doc["attempt_id"]), "--json", "--data-dir", str(data)).stdout)
    assert out["identical_to_stored"] is True
    assert out["sheet"]["total"] == doc["total"]


@pytest.mark.timeout(200)
@pytest.mark.parametrize(("table", "column", "where"), [
    ("audit", "payload", "seq = 3"),
    ("results", "document", "1 = 1"),
    ("timeline", "record", "seq = 12"),
])
def test_audit_verify_reports_a_flipped_byte(exam: tuple[Path, dict[str, object]], tmp_path: Path,
                                             table: str, column: str, where: str) -> None:
    data, _ = exam
    copy = tmp_path / "data"
    subprocess.run(["cp", "-r", str(data), str(copy)], check=True)
    assert cli("audit", "verify", "--data-dir", str(copy)).returncode == 0
    db = sqlite3.connect(copy / "examstation.sqlite3")
    text = db.execute(f"SELECT {column} FROM {table} WHERE {where}").fetchone()[0]
    i = text.index(":") + 2  # inside the JSON, past the first key
    flipped = text[:i] + chr(ord(text[i]) ^ 1) + text[i + 1:]
    db.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (flipped,))
    db.commit()
    db.close()
    result = cli("audit", "verify", "--data-dir", str(copy), check=False)
    assert result.returncode == 1, result.stdout
    assert f"\n  {table} " in result.stdout, result.stdout
    if table != "audit":  # the attempt's own records: replay refuses to call them the signed result
        again = cli("replay", str(exam[1]["attempt_id"]), "--data-dir", str(copy), check=False)
        assert again.returncode != 0, again.stdout
