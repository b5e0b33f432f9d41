"""Ed25519 for the simulated province: its own key that signs receipts, and the check of a site's result.

Both directions use one scheme (docs/uplink.md): Ed25519 over the RFC 8785 canonical JSON of the
message without its `signature` member, which is `{"alg": "Ed25519", "key_id", "value"}` with
`key_id` = "ed25519:" + the first 16 hex digits of the SHA-256 of the raw 32-byte public key and
`value` the base64 of the 64-byte signature. Canonical bytes come from hardware_sim.jcs, a second
implementation beside the `rfc8785` package the station uses, so a canonicalisation bug on either
side shows up as a signature that does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hardware_sim import jcs


class ProvinceKeyError(ValueError):
    """The province's key file cannot be read or holds no Ed25519 private key."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_pem(pem: str, whose: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as err:
        raise ValueError(f"the public key of {whose} is not a PEM public key ({err})") from err
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"the public key of {whose} is not an Ed25519 public key")
    return key


def sign(message: Mapping[str, Any], private: Ed25519PrivateKey, claimed_key_id: str | None = None) -> dict[str, Any]:
    """`message` with its `signature` block (any old one replaced). `claimed_key_id` names another key
    than the one that signs: what a forger does, for tests only."""
    body = {k: v for k, v in message.items() if k != "signature"}
    value = base64.b64encode(private.sign(jcs.dumps(body))).decode()
    body["signature"] = {"alg": "Ed25519", "key_id": claimed_key_id or key_id(private.public_key()), "value": value}
    return body


def signature_ok(message: Mapping[str, Any], public: Ed25519PublicKey) -> bool:
    """True when `message` carries an Ed25519 signature by `public` over its canonical JSON without `signature`."""
    sig = message.get("signature")
    if not isinstance(sig, Mapping) or sig.get("alg") != "Ed25519":
        return False
    body = {k: v for k, v in message.items() if k != "signature"}
    try:
        public.verify(base64.b64decode(str(sig.get("value", "")), validate=True), jcs.dumps(body))
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create(path: Path) -> Ed25519PrivateKey:
    """The private key in PEM file `path`, created (mode 0600) when the file does not exist, with its
    public half beside it in `public_path(path)`."""
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as err:
            raise ProvinceKeyError(f"province key {path} cannot be read ({err}); give an unencrypted PKCS#8 PEM "
                                   "Ed25519 key, or a path that does not exist yet to create one") from err
        if not isinstance(key, Ed25519PrivateKey):
            raise ProvinceKeyError(f"province key {path} is not an Ed25519 private key")
    else:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            tmp.replace(path)
        except OSError as err:  # a full disk: no empty key file that fails every later start
            tmp.unlink(missing_ok=True)
            raise OSError(err.errno, err.strerror, str(path)) from err
    pub = public_path(path)
    text = public_pem(key.public_key())
    if not pub.exists() or pub.read_text(encoding="utf-8") != text:
        pub.write_text(text, encoding="utf-8")
    return key


def public_path(private_path: Path) -> Path:
    """Where the public half of the key in `private_path` is written: `province.pem` -> `province.pub.pem`."""
    return private_path.with_name(private_path.stem + ".pub.pem")
