"""The evidence bundle: `export` from a real signed attempt with video, `verify` with no database.

The attempt is made by the production services on a real database (a hand-moved clock, as in
test_verify_tampering): A01's two cameras record through the real evidence index (each segment a
real H.264 MKV written with PyAV, indexed with its `evidence.segment` audit entry), the check-in
stills are taken by the real linker (its camera grab replaced by a JPEG made here: there is no
camera on the test box), and the last signature links the segments in the signing transaction.
The segments are handed to the index as the recorder would report them, not recorded from a live
stream: recording is tested by the recorder's own tests; here the bundle is what is tested.

Each tampering test works on its own copy of the bundle, and each asserts that verify names the
file (and, for the manifest's audit entries, the seq) where the bundle stops holding.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.camera.contract import Segment
from devices.ref import DeviceRef
from devices.sample import Sample
from scoring.canonical import canonical_json
from station.bundle_format import BundleError
from station.bundle_verify import verify_bundle
from station.config import load_site_config
from station.db import database_path, open_database
from station.evidence_bundle import export_bundle
from station.evidence_index import EvidenceIndex
from station.evidence_link import EvidenceLinker
from station.services import StationServices
from station.signing import SiteKey
from station.stored import ensure_database
from tests.integration.conftest import ManualClock, S, ready_station

CONFIG = load_site_config("examples/site.yaml")
CAMERAS = ("overview", "bench")


def mkv(path: Path, shade: int) -> tuple[str, int]:
    """A real three-frame H.264 MKV (32x32, 10 fps); returns its SHA-256 and size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for n in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), (shade + 40 * n) % 256, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def jpeg(_url: str, _timeout_s: float) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((24, 32, 3), 128, np.uint8))
    assert ok
    return bytes(data.tobytes())


class Hooks:
    """What station.recording gives the check-in: no refusal, and the linker's stills."""

    def __init__(self, linker: EvidenceLinker) -> None:
        self.linker = linker

    def refusal(self) -> str | None:
        return None

    def checked_in(self, attempt_id: str, station: str) -> None:
        self.linker.checked_in(attempt_id, station)


def record(index: EvidenceIndex, data: Path, clock: ManualClock, from_utc_ns: int, to_utc_ns: int) -> None:
    """Each camera's video from `from_utc_ns` to `to_utc_ns` in 2 segments, as the recorder reports them."""
    middle = (from_utc_ns + to_utc_ns) // 2
    for c, camera in enumerate(CAMERAS):
        for n, (a, b) in enumerate(((from_utc_ns, middle), (middle, to_utc_ns))):
            segment_id = f"A01-{camera}-{a}"
            path = data / "evidence" / "A01" / camera / f"{segment_id}.mkv"
            sha256, size = mkv(path, 60 * c + 20 * n)
            index.segment_closed(Segment("A01", camera, segment_id, path, sha256, size, a, b,
                                         a - clock.utc_ns() + clock.t, b - clock.utc_ns() + clock.t, "run-1", 3,
                                         "h264", 32, 32))
    assert index.flush()


@dataclass(frozen=True)
class Signed:
    data: Path
    attempt_id: str
    bundle: Path


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Signed:
    """K21 with the main switch thrown (a deduction) and a manual mark (sheet version 2), signed with
    video linked; exported once."""
    data = tmp_path_factory.mktemp("station")
    ensure_database(data)
    clock = ManualClock()
    with open_database(database_path(data)) as db:
        services = StationServices(CONFIG, db, SiteKey.load_or_create(data), clock)
        index = EvidenceIndex(db, data, services.events, utc_ns=clock.utc_ns)
        index.start()
        linker = EvidenceLinker(db, data, CONFIG, index, clock, grab=jpeg)
        services.registration.recording = Hooks(linker)
        services.sign_off.evidence = linker
        try:
            checked_in = clock.utc_ns()
            aid = ready_station(services, clock, {"K2": "K21"})
            linker.join()
            services.start_item(aid, "K21", "考评员甲")
            clock.t += 30 * S
            services.record_sample(Sample("bench.main_switch", True, clock.t, clock.utc_ns(),
                                          DeviceRef("A01", "bench")))
            clock.t += 30 * S
            services.end_item(aid, "done", "考评员甲")
            services.score(aid)  # version 1 seals the timeline; the mark adds rows after the seal and version 2
            services.mark(aid, "K21", "K21-1a", 1, "考评员甲", "a mark the examiner adds")
            services.review(aid, "考评员甲")
            services.candidate_decision(aid, "K21", True)
            services.examiner_sign(aid, "考评员甲")
            record(index, data, clock, checked_in - 40 * S, clock.utc_ns() + 20 * S)
            doc = services.examiner_sign(aid, "考评员乙")
            assert doc is not None and len(doc["evidence"]) == 4 and len(doc["checkin_stills"]) == 2, doc
        finally:
            index.stop()
            services.close()
    bundle = tmp_path_factory.mktemp("export") / "bundle"
    export_bundle(data, aid, bundle)
    return Signed(data, aid, bundle)


@pytest.fixture
def copy(signed: Signed, tmp_path: Path) -> Path:
    """A copy of the bundle in a fresh directory, far from the station's data directory."""
    out = tmp_path / "copy"
    shutil.copytree(signed.bundle, out)
    return out


def manifest(bundle: Path) -> dict[str, Any]:
    value = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert isinstance(value, dict)
    return value


def first(bundle: Path, folder: str) -> str:
    return str(sorted(n for n in manifest(bundle)["files"] if n.startswith(folder + "/"))[0])


def test_the_export_verifies(signed: Signed, copy: Path) -> None:
    listed = manifest(copy)["files"]
    assert {"result.json", "site_public_key.pem", "timeline.jsonl", "sheet.json",
            "rubric/lv-electrician-2015.yaml"} <= set(listed)
    assert len([n for n in listed if n.startswith("segments/")]) == 4
    assert sorted(n for n in listed if n.startswith("stills/")) == ["stills/bench.jpg", "stills/overview.jpg"]
    ok, text = verify_bundle(copy)
    assert ok, text
    assert "4 segments and 2 stills" in text and "identical to sheet.json and to the signed result" in text
    assert "sheet.json is version 2" in text
    sealed = next(e for e in manifest(copy)["audit"] if e["action"] == "timeline.sealed")["payload"]["rows"]
    assert sealed < len((copy / "timeline.jsonl").read_text(encoding="utf-8").splitlines())  # the mark's rows
    assert "pass --public-key" in text  # the bundled key was used, and the report says what that proves
    pem = copy.parent / "province.pem"
    pem.write_bytes((copy / "site_public_key.pem").read_bytes())
    ok, text = verify_bundle(copy, pem)
    assert ok and f"from {pem}" in text and "pass --public-key" not in text, text


@pytest.mark.parametrize("name", ["segment", "still", "manifest.json", "result.json", "timeline.jsonl", "sheet.json",
                                  "rubric", "site_public_key.pem"])
def test_one_flipped_byte_is_named(copy: Path, name: str) -> None:
    target = {"segment": lambda: first(copy, "segments"), "still": lambda: first(copy, "stills"),
              "rubric": lambda: first(copy, "rubric")}.get(name, lambda: name)()
    path = copy / target
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    ok, text = verify_bundle(copy)
    assert not ok
    assert text.startswith(f"NOT VERIFIED: {target}:") or (target == "manifest.json" and "manifest.json" in text), text


def test_every_byte_of_the_manifest_is_checked(copy: Path) -> None:
    """Not only the middle byte: a flip anywhere in the manifest (every 97th byte) fails, naming it."""
    original = (copy / "manifest.json").read_bytes()
    for at in range(0, len(original), 97):
        data = bytearray(original)
        data[at] ^= 0x01
        (copy / "manifest.json").write_bytes(bytes(data))
        ok, text = verify_bundle(copy)
        assert not ok and "manifest.json" in text, (at, text)


def test_a_removed_file_and_an_added_file_are_named(copy: Path) -> None:
    segment = first(copy, "segments")
    moved = copy.parent / "moved.mkv"
    (copy / segment).rename(moved)
    ok, text = verify_bundle(copy)
    assert not ok and text.startswith(f"NOT VERIFIED: {segment}: is missing"), text
    moved.rename(copy / segment)
    (copy / "segments" / "later.mkv").write_bytes(b"not recorded here")
    ok, text = verify_bundle(copy)
    assert not ok and text.startswith("NOT VERIFIED: segments/later.mkv: is not listed in manifest.json"), text


def test_another_public_key_fails_the_signature(copy: Path) -> None:
    other = copy.parent / "other.pem"
    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    ok, text = verify_bundle(copy, other)
    assert not ok
    assert text.startswith("NOT VERIFIED: result.json: the Ed25519 signature does not verify against ed25519:"), text
    assert str(other) in text


def rewrite_manifest(bundle: Path, change: Any) -> None:
    """Edit the manifest as a tamperer would: change its value, write it back in canonical form."""
    value = manifest(bundle)
    change(value)
    (bundle / "manifest.json").write_text(canonical_json(value), encoding="utf-8")


def test_an_audit_entry_changed_in_the_manifest_is_named_by_its_seq(copy: Path) -> None:
    entry = next(e for e in manifest(copy)["audit"] if e["action"] == "sheet.scored")
    rewrite_manifest(copy, lambda m: next(e for e in m["audit"] if e["seq"] == entry["seq"])["payload"]
                     .update(total=100))
    ok, text = verify_bundle(copy)
    assert not ok and text.startswith(f"NOT VERIFIED: manifest.json: audit seq={entry['seq']}: entry_hash"), text


def test_a_segment_replaced_with_its_manifest_hash_updated_fails_against_its_audit_entry(copy: Path) -> None:
    segment = first(copy, "segments")
    data = (copy / segment).read_bytes() + b"\0"
    (copy / segment).write_bytes(data)
    rewrite_manifest(copy, lambda m: m["files"].update({segment: hashlib.sha256(data).hexdigest()}))
    ok, text = verify_bundle(copy)
    assert not ok and text.startswith(f"NOT VERIFIED: {segment}: sha256 "), text
    assert "result.json lists" in text  # the signed evidence list names its hash first, then the audit entry


def test_a_timeline_row_rewritten_with_its_hashes_recomputed_fails_at_the_seal(signed: Signed, copy: Path) -> None:
    lines = (copy / "timeline.jsonl").read_text(encoding="utf-8").splitlines()
    out, prev = [], None
    for line in lines:
        row = json.loads(line)
        record = json.loads(row["record"])
        if record.get("signal") == "bench.main_switch" and record.get("value") is True:
            row["record"] = canonical_json({**record, "value": False})
        row["row_hash"] = hashlib.sha256(((prev or signed.attempt_id) + row["record"]).encode()).hexdigest()
        prev = row["row_hash"]
        out.append(canonical_json(row) + "\n")
    data = "".join(out).encode()
    (copy / "timeline.jsonl").write_bytes(data)
    rewrite_manifest(copy, lambda m: m["files"].update({"timeline.jsonl": hashlib.sha256(data).hexdigest()}))
    ok, text = verify_bundle(copy)
    assert not ok and text.startswith("NOT VERIFIED: timeline.jsonl: row ") and "sealed it as" in text, text


def test_verify_needs_no_database(copy: Path, tmp_path: Path) -> None:
    """In a fresh directory, in a process where opening any SQLite database raises, the CLI verifies
    the bundle and writes nothing, neither into it nor where it runs."""
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = ("import sqlite3\n"
            "def refuse(*args, **kwargs): raise AssertionError(f'verify opened a database: {args}')\n"
            "sqlite3.connect = refuse\n"
            "from station.cli import main\n"
            f"raise SystemExit(main(['verify', {str(copy)!r}]))")
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"}, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("verified: bundle"), done.stdout
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before
    assert not list(work.iterdir())


def test_export_refuses_an_existing_bundle_and_a_changed_segment(signed: Signed, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="exists and is not an empty directory"):
        export_bundle(signed.data, signed.attempt_id, signed.bundle)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no attempt nobody in this data directory"):
        export_bundle(signed.data, "nobody", tmp_path / "empty")
    assert (tmp_path / "empty").is_dir()  # an empty OUT given is left as it was when the export fails
    data = tmp_path / "station"
    shutil.copytree(signed.data, data)
    victim = sorted((data / "evidence" / "A01" / "bench").glob("*.mkv"))[0]
    victim.write_bytes(victim.read_bytes()[:-1])
    out = tmp_path / "bundle"
    with pytest.raises(BundleError, match=f"segment {victim.stem}: .* the file was changed after recording"):
        export_bundle(data, signed.attempt_id, out)
    assert not out.exists() and not (tmp_path / "bundle.partial").exists()  # no half bundle left behind


def test_export_refuses_when_the_installed_rubric_is_another_edition(signed: Signed, tmp_path: Path) -> None:
    data = tmp_path / "station"
    shutil.copytree(signed.data, data)
    with sqlite3.connect(database_path(data)) as con:
        con.execute("UPDATE score_sheets SET rubric_hash = ? WHERE attempt_id = ?",
                    ("sha256:" + "0" * 64, signed.attempt_id))
    con.close()
    with pytest.raises(BundleError, match=r"another edition.*restore that file"):
        export_bundle(data, signed.attempt_id, tmp_path / "bundle")


def test_verify_is_quick(copy: Path) -> None:
    started = time.perf_counter()
    ok, text = verify_bundle(copy)
    assert ok, text
    assert time.perf_counter() - started < 2.0
