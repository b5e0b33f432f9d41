"""`examstation verify OUT`: check an evidence bundle with no database, and name the first thing that fails.

Who runs it: the province, an appeal board, a court's expert; anywhere, with only the bundle (layout:
station.bundle_format) and this software. The order of the checks is the order of trust: first
that the bundle is what was exported (every file's SHA-256 against the manifest, nothing missing or
added), then that the manifest's audit entries are an unbroken piece of the station's hash chain,
then that the result is signed by the site key and names that piece's entry as its checkpoint,
then that every file is the one that piece of chain recorded (station.bundle_record), and last
that the timeline, scored again with the bundled rubric, gives the sheet and the signed result
(station.result_check, the same checks `audit verify` runs on the database).

It stops at the first thing that does not hold: a later check would only repeat the damage in other
words. The key: `--public-key` with the PEM the province registered is what proves who signed; the
key inside the bundle only proves the bundle is whole, and the report says which was used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scoring.canonical import canonical_json
from station.bundle_format import (
    FORMAT,
    MANIFEST,
    PUBLIC_KEY,
    RESULT,
    SHEET,
    TIMELINE,
    Bundle,
    BundleError,
    Entry,
    Mismatch,
    file_sha256,
)
from station.bundle_record import check_record
from station.db.digest import audit_entry_hash
from station.record_proof import SiteKeyRef, key_ref
from station.signing import SigningError, verify


def verify_bundle(root: Path, public_key: Path | None = None) -> tuple[bool, str]:
    """(True, summary) when every check holds; (False, the first mismatch) otherwise.
    Raises BundleError for a path that is not a bundle at all (the CLI's exit status 2)."""
    if not root.is_dir():
        raise BundleError(f"{root} is not a directory; give the directory `examstation export` wrote")
    if not (root / MANIFEST).is_file():
        raise BundleError(f"{root} has no {MANIFEST}: it is not an evidence bundle (or the export did not finish: "
                          f"a half export is named {root.name}.partial)")
    given = _given_key(public_key)
    try:
        bundle = _open(root)
        key = _signature(bundle, given)
        _checkpoint(bundle)
        facts = check_record(bundle)
    except Mismatch as wrong:
        return False, (f"NOT VERIFIED: {wrong}\nthis is the first thing that does not hold; the bundle cannot be "
                       "trusted until it is explained: get the bundle again from the site, or ask the province for "
                       "its copy of the result")
    lines = [f"verified: bundle {root}, result {bundle.doc.get('result_id')} of attempt {bundle.attempt_id} "
             f"({bundle.manifest.get('site')}/{bundle.manifest.get('station')})",
             f"  {len(bundle.files)} files hash to what {MANIFEST} lists; audit entries {bundle.entries[0].seq}.."
             f"{bundle.entries[-1].seq} form one chain through the checkpoint the result was signed over",
             f"  signature: Ed25519 by {key.source}", *(f"  {fact}" for fact in facts)]
    if public_key is None:
        lines.append(f"  the signature was checked with the key inside the bundle ({PUBLIC_KEY}): that shows the "
                     "bundle is whole, not who made it; pass --public-key with the key the province registered")
    return True, "\n".join(lines)


def _open(root: Path) -> Bundle:
    manifest = _manifest(root)
    files = manifest["files"]
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()} - {MANIFEST}
    for name in sorted(set(files) | present):
        if name not in files:
            raise Mismatch(name, f"is not listed in {MANIFEST}: it was added after the export; remove it or get "
                                 "the bundle again")
        path = root / name
        if name not in present or not path.is_file():
            raise Mismatch(name, f"is missing: {MANIFEST} lists it with sha256 {files[name]}; the bundle is "
                                 "incomplete, get it again")
        actual = file_sha256(path)
        if actual != files[name]:
            raise Mismatch(name, f"sha256 {actual}, {MANIFEST} records {files[name]}: the file (or the manifest) "
                                 "was changed after the export")
    for name in (RESULT, PUBLIC_KEY, TIMELINE, SHEET):
        if name not in files:
            raise Mismatch(MANIFEST, f"lists no {name}; every bundle has one")
    entries = _chain(manifest["audit"])
    bundle = Bundle(root, manifest, files, entries, {})
    doc = _json_object(RESULT, bundle.text(RESULT))
    for name in ("result_id", "attempt_id", "site", "station"):
        if doc.get(name) != manifest[name]:
            raise Mismatch(MANIFEST, f"names {name} {manifest[name]!r}, {RESULT} says {doc.get(name)!r}")
    return Bundle(root, manifest, files, entries, doc)


def _manifest(root: Path) -> dict[str, Any]:
    try:
        text = (root / MANIFEST).read_text(encoding="utf-8")
        manifest = json.loads(text)
    except (UnicodeDecodeError, ValueError) as err:
        raise Mismatch(MANIFEST, f"is not JSON ({err}): it was damaged or edited; get the bundle again") from err
    if not isinstance(manifest, dict):
        raise Mismatch(MANIFEST, "is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise Mismatch(MANIFEST, f"format {manifest.get('format')!r}; this verifier reads {FORMAT!r}")
    if canonical_json(manifest) != text:
        raise Mismatch(MANIFEST, "is not in the canonical form export writes (RFC 8785): it was edited after the "
                                 "export")
    for name, kind in (("site", str), ("station", str), ("attempt_id", str), ("result_id", str), ("files", dict),
                       ("audit", list)):
        if not isinstance(manifest.get(name), kind):
            raise Mismatch(MANIFEST, f"{name} is {manifest.get(name)!r}, expected a {kind.__name__}")
    for name, digest in manifest["files"].items():
        parts = name.split("/")
        if not isinstance(digest, str) or name.startswith("/") or ".." in parts or "" in parts or name == MANIFEST:
            raise Mismatch(MANIFEST, f"files lists {name!r}: {digest!r}, which is not a file of a bundle")
    return manifest


def _chain(raw: list[Any]) -> list[Entry]:
    """The manifest's audit entries: each hash recomputed, each linked to the one before, no seq skipped."""
    entries: list[Entry] = []
    for n, item in enumerate(raw):
        try:
            entry = Entry.from_dict(item if isinstance(item, dict) else {})
        except ValueError as err:
            raise Mismatch(MANIFEST, f"audit entry {n} (seq={item.get('seq') if isinstance(item, dict) else '?'}) "
                                     f"is not an audit entry: {err}") from err
        recomputed = audit_entry_hash(entry.prev_hash, entry.seq, entry.utc_ns, entry.actor, entry.action,
                                      entry.subject, entry.payload)
        if recomputed != entry.entry_hash:
            raise Mismatch(MANIFEST, f"audit seq={entry.seq}: entry_hash {entry.entry_hash}, recomputed {recomputed} "
                                     "from the entry: the entry was changed")
        if entries and entry.seq != entries[-1].seq + 1:
            raise Mismatch(MANIFEST, f"audit seq={entry.seq} follows seq={entries[-1].seq}: entries are missing "
                                     "from the piece of chain")
        if entries and entry.prev_hash != entries[-1].entry_hash:
            raise Mismatch(MANIFEST, f"audit seq={entry.seq}: prev_hash {entry.prev_hash} is not the entry_hash "
                                     f"{entries[-1].entry_hash} of seq={entries[-1].seq}: the chain is broken there")
        entries.append(entry)
    if not entries:
        raise Mismatch(MANIFEST, "holds no audit entries; a bundle carries the chain entries that cover its files")
    return entries


def _json_object(name: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        raise Mismatch(name, f"is not JSON ({err})") from err
    if not isinstance(value, dict):
        raise Mismatch(name, "is not a JSON object")
    return value


def _given_key(public_key: Path | None) -> SiteKeyRef | None:
    """The key passed with --public-key (the one the province registered); BundleError when unusable."""
    if public_key is None:
        return None
    try:
        return key_ref(public_key.read_text(encoding="ascii"), str(public_key))
    except (OSError, UnicodeDecodeError, SigningError) as err:
        raise BundleError(f"--public-key {public_key}: cannot use it ({err}); give the PEM file the province "
                          "registered (`examstation keys export` printed it)") from err


def _signature(bundle: Bundle, given: SiteKeyRef | None) -> SiteKeyRef:
    """The result's signature with the given key, else the bundled one; the bundled key must be the
    signer's too. Returns the key the signature was checked with."""
    try:
        bundled = key_ref(bundle.text(PUBLIC_KEY), f"{PUBLIC_KEY} in the bundle")
    except SigningError as err:
        if given is None:
            raise Mismatch(PUBLIC_KEY, str(err)) from err
        bundled = None
    key = given or bundled
    assert key is not None
    sig = bundle.doc.get("signature")
    named = sig.get("key_id") if isinstance(sig, dict) else None
    if not verify(bundle.doc, key.public_pem):
        raise Mismatch(RESULT, f"the Ed25519 signature does not verify against {key.source} (the document names key "
                               f"{named}): the document was changed after signing, or signed by another key")
    if bundled is None or bundled.public_pem.strip() != key.public_pem.strip():
        raise Mismatch(PUBLIC_KEY, f"is not the key that signed the result ({key.source}): the bundle carries "
                                   "another key, or a damaged one")
    return key


def _checkpoint(bundle: Bundle) -> None:
    """The result names the chain's head when it was signed: the manifest's piece of chain must hold
    that entry, and end there (or at the result's own entry, written in the signing transaction)."""
    point = bundle.doc.get("audit_checkpoint")
    if not isinstance(point, dict) or not isinstance(point.get("seq"), int):
        raise Mismatch(RESULT, "has no audit_checkpoint: the bundle's audit entries cannot be tied to the signature")
    seq, head = point["seq"], point.get("entry_hash")
    held = next((e for e in bundle.entries if e.seq == seq), None)
    if held is None:
        raise Mismatch(MANIFEST, f"audit entries {bundle.entries[0].seq}..{bundle.entries[-1].seq} do not hold seq "
                                 f"{seq}, the checkpoint {RESULT} was signed over")
    if held.entry_hash != head:
        raise Mismatch(MANIFEST, f"audit seq={seq}: entry_hash {held.entry_hash}, {RESULT} was signed over {head} "
                                 "there: the chain was rewritten")
    after = [e for e in bundle.entries if e.seq > seq]
    if any(e.subject != f"result:{bundle.doc.get('result_id')}" for e in after):
        first = next(e for e in after if e.subject != f"result:{bundle.doc.get('result_id')}")
        raise Mismatch(MANIFEST, f"audit seq={first.seq} ({first.action}) comes after the checkpoint seq {seq} the "
                                 "result was signed over; only the result's own entry may")
