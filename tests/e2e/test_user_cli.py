"""`examstation user add` and `user list` as an administrator runs them: no default password, the
password typed twice (or one line on stdin for scripts), and a clear message with exit status 2 for
anything wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMSTATION = [sys.executable, "-m", "station.cli"]


def _cli(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Without a controlling terminal (new session), getpass reads standard input, as a pipe would give it."""
    return subprocess.run([*EXAMSTATION, *args, "--data-dir", str(data)], cwd=ROOT, input=stdin, text=True,
                          capture_output=True, timeout=60, start_new_session=True)


def _database(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    assert _cli(data, "db", "upgrade").returncode == 0
    return data


def test_user_add_from_stdin_then_list(tmp_path: Path) -> None:
    data = _database(tmp_path)
    added = _cli(data, "user", "add", "wang.examiner", "--role", "examiner", "--stations", "A01,A02",
                 "--password-stdin", stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    assert "wang.examiner added: examiner at A01, A02" in added.stdout
    assert "password" not in added.stderr.lower()
    assert _cli(data, "user", "add", "li.admin", "--role", "admin", "--password-stdin",
                stdin="another long password\n").returncode == 0
    listed = _cli(data, "user", "list")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["li.admin", "admin", "-"]
    assert lines[1].split() == ["wang.examiner", "examiner", "A01,A02"]


def test_typed_password_twice(tmp_path: Path) -> None:
    data = _database(tmp_path)
    ok = _cli(data, "user", "add", "zhao", "--role", "proctor", stdin="typed twice here\ntyped twice here\n")
    assert ok.returncode == 0, ok.stderr
    differ = _cli(data, "user", "add", "qian", "--role", "proctor", stdin="typed twice here\ntyped otherwise\n")
    assert differ.returncode == 2 and "the two passwords differ" in differ.stderr
    assert "qian" not in _cli(data, "user", "list").stdout


def test_bad_input_exits_2_naming_the_problem(tmp_path: Path) -> None:
    data = _database(tmp_path)
    cases = {
        ("user", "add", "sun", "--role", "admin", "--password-stdin"): ("short\n", "use at least 10"),
        ("user", "add", "sun", "--role", "examiner", "--stations", "Z99", "--password-stdin"):
            ("a long enough password\n", "Z99 are not in this site's config"),
        ("user", "add", "sun", "--role", "proctor", "--stations", "A01", "--password-stdin"):
            ("a long enough password\n", "only examiners are assigned to stations"),
        ("user", "add", "--role", "admin", "--password-stdin"): ("a long enough password\n", "needs the name"),
    }
    for args, (stdin, message) in cases.items():
        out = _cli(data, *args, stdin=stdin)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)
    assert _cli(data, "user", "add", "sun", "--role", "admin", "--password-stdin",
                stdin="a long enough password\n").returncode == 0
    taken = _cli(data, "user", "add", "sun", "--role", "admin", "--password-stdin", stdin="a long enough password\n")
    assert taken.returncode == 2 and "exists already" in taken.stderr
    bad_role = _cli(data, "user", "add", "zhou", "--role", "root", "--password-stdin", stdin="x" * 12 + "\n")
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr


def test_an_empty_database_lists_how_to_add_the_first_user(tmp_path: Path) -> None:
    listed = _cli(_database(tmp_path), "user", "list")
    assert listed.returncode == 0 and "examstation user add NAME --role admin" in listed.stdout


def test_run_serves_the_ui_and_says_how_to_add_the_first_user(tmp_path: Path) -> None:
    """`run --port 0`: the URL is printed and serves the login page; with no users it says how to add one."""
    import httpx

    data = _database(tmp_path)
    run = subprocess.Popen([*EXAMSTATION, "run", "--data-dir", str(data), "--port", "0", "--duration", "8"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        seen = []
        for line in run.stdout:
            seen.append(line)
            if "proctor UI on " in line:
                url = line.split("proctor UI on ", 1)[1].strip()
                assert url.startswith("http://127.0.0.1:")
                assert httpx.get(f"{url}/login", timeout=10).status_code == 200
            if "examstation user add NAME --role admin" in line:
                break
        rest, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, err
    text = "".join(seen) + rest
    assert "proctor UI on " in text and "examstation user add NAME --role admin" in text, text


def test_run_refuses_plain_http_beyond_loopback_before_starting(tmp_path: Path) -> None:
    out = _cli(_database(tmp_path), "run", "--host", "0.0.0.0", "--duration", "1")
    assert out.returncode == 2 and "--tls-cert and --tls-key" in out.stderr
    assert "examstation run: site" not in out.stdout


def test_user_passwd_sets_a_new_password_audited_without_it(tmp_path: Path) -> None:
    """The way back in for a forgotten password (an administrator's too): on the box, typed twice."""
    from sqlalchemy import select

    from devices.clock import SystemClock
    from station.db import database_path, open_database
    from station.db.models import AuditRow
    from station.users import LoginRefused, UserBook

    data = _database(tmp_path)
    assert _cli(data, "user", "add", "li.admin", "--role", "admin", "--password-stdin",
                stdin="the first password\n").returncode == 0
    changed = _cli(data, "user", "passwd", "li.admin", stdin="a second password\na second password\n")
    assert changed.returncode == 0, changed.stderr
    assert "password of li.admin (admin) changed" in changed.stdout
    with open_database(database_path(data)) as db:
        users = UserBook(db, SystemClock(), ["A01"])
        assert users.authenticate("li.admin", "a second password").name == "li.admin"
        with pytest.raises(LoginRefused):
            users.authenticate("li.admin", "the first password")
        with db.read() as s:
            entries = s.scalars(select(AuditRow).where(AuditRow.subject == "user:li.admin")
                                .order_by(AuditRow.seq)).all()
            last = (entries[-1].actor, entries[-1].action, entries[-1].payload)
            everything = " ".join(e.payload for e in entries)
    assert last[:2] == ("cli", "user.changed") and '"password":"changed"' in last[2].replace(" ", ""), last
    assert "a second password" not in everything and "argon2" not in everything
    assert _cli(data, "audit", "verify").returncode == 0

    differ = _cli(data, "user", "passwd", "li.admin", stdin="a third password!\nnot the same one\n")
    assert differ.returncode == 2 and "the two passwords differ" in differ.stderr
    short = _cli(data, "user", "passwd", "li.admin", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "use at least 10" in short.stderr
    nobody = _cli(data, "user", "passwd", "nobody", "--password-stdin", stdin="a long enough password\n")
    assert nobody.returncode == 2 and "no user nobody" in nobody.stderr
    unnamed = _cli(data, "user", "passwd", "--password-stdin", stdin="a long enough password\n")
    assert unnamed.returncode == 2 and "user passwd needs the name" in unnamed.stderr
