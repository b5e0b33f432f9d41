"""The acceptance of issue 13's bundle, through the CLI as a site would run it: `demo --scenario ...
--once --json` records and signs one attempt (with the simulated cameras' video), `export` writes
its bundle, `verify` passes it (exit 0), fails a tampered copy naming the file (exit 1), with the
province's key too, and refuses a path that is not a bundle (exit 2)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("bundle-cli")  # one worker runs the module fixture's attempt once


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "station.cli", *args], capture_output=True, text=True, check=False,
                          timeout=240)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, object]]:
    """(data dir, bundle, result document) of one demo attempt."""
    data = tmp_path_factory.mktemp("site")
    done = cli("demo", "--scenario", "k21-short-circuit", "--once", "--json", "--data-dir", str(data),
               "--config", "examples/site.yaml")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    out = tmp_path_factory.mktemp("export") / "bundle"
    done = cli("export", str(doc["attempt_id"]), str(out), "--data-dir", str(data), "--config", "examples/site.yaml")
    assert done.returncode == 0, done.stderr
    assert f"check it with `examstation verify {out}`" in done.stdout
    return data, out, doc


@pytest.mark.timeout(300)
def test_the_demo_attempt_exports_and_verifies(bundle: tuple[Path, Path, dict[str, object]], tmp_path: Path) -> None:
    data, out, doc = bundle
    done = cli("verify", str(out))
    assert done.returncode == 0 and done.stdout.startswith("verified: bundle"), done.stdout + done.stderr
    segments = doc["evidence"]
    assert isinstance(segments, list)
    assert f"{len(segments)} segments" in done.stdout
    pem = tmp_path / "province.pem"
    pem.write_text(cli("keys", "export", "--data-dir", str(data), "--config", "examples/site.yaml").stdout)
    done = cli("verify", str(out), "--public-key", str(pem))
    assert done.returncode == 0 and f"from {pem}" in done.stdout, done.stdout + done.stderr


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["result.json", "timeline.jsonl", "manifest.json", "segment"])
def test_a_flipped_byte_exits_1_naming_the_file(bundle: tuple[Path, Path, dict[str, object]], tmp_path: Path,
                                               name: str) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundle[1], copy)
    if name == "segment":
        name = sorted(p.relative_to(copy).as_posix() for p in (copy / "segments").iterdir())[0]
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))
    done = cli("verify", str(copy))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("NOT VERIFIED: ") and name in done.stdout.splitlines()[0], done.stdout


@pytest.mark.timeout(300)
def test_what_is_not_a_bundle_exits_2(bundle: tuple[Path, Path, dict[str, object]], tmp_path: Path) -> None:
    data, out, doc = bundle
    done = cli("verify", str(tmp_path))
    assert done.returncode == 2 and "has no manifest.json: it is not an evidence bundle" in done.stderr, done.stderr
    done = cli("export", str(doc["attempt_id"]), str(out), "--data-dir", str(data), "--config", "examples/site.yaml")
    assert done.returncode == 2 and "exists and is not an empty directory" in done.stderr, done.stderr
