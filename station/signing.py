"""The site's signing key: Ed25519 over the RFC 8785 canonical JSON of a result document.

One key per site, created once (`examstation keys init`, or on first use) in the data directory,
readable only by the controller's user. The province registers the public key
(`examstation keys export` prints it as PEM) and can then check that a result came from this
site unchanged: the signature covers the canonical bytes of the document without `signature`.
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

from scoring import canonical

KEY_FILE = "site-ed25519.pem"


class SigningError(Exception):
    """The site key is missing, unreadable or does not verify."""


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JCS) bytes of `document` without its `signature` member (scoring.canonical)."""
    return canonical.canonical_bytes({k: v for k, v in document.items() if k != "signature"})


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


class SiteKey:
    """The private key of this site, loaded from (or created in) `<data dir>/keys/`."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> SiteKey:
        path = data_dir / "keys" / KEY_FILE
        if path.exists():
            return cls.load(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        tmp = path.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        except OSError as err:  # a full disk: no half-written key left behind, and the file named
            tmp.unlink(missing_ok=True)
            raise OSError(err.errno, err.strerror, str(path)) from err
        return cls(private)

    @classmethod
    def load(cls, path: Path) -> SiteKey:
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as err:
            raise SigningError(f"site key {path} cannot be read ({err}); restore it from the site's backup — "
                               "a new key would not match the one the province registered") from err
        if not isinstance(private, Ed25519PrivateKey):
            raise SigningError(f"site key {path} is not an Ed25519 key")
        return cls(private)

    def public_pem(self) -> str:
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """The document with its `signature` block added."""
        value = self._private.sign(canonical_bytes(document))
        signed = {k: v for k, v in document.items() if k != "signature"}
        signed["signature"] = {"alg": "Ed25519", "key_id": self.key_id, "value": base64.b64encode(value).decode()}
        return signed


def verify(document: Mapping[str, Any], public_pem: str) -> bool:
    """True when the document's signature was made by the key whose public half is `public_pem`."""
    public = serialization.load_pem_public_key(public_pem.encode())
    if not isinstance(public, Ed25519PublicKey):
        raise SigningError("the public key is not an Ed25519 key")
    sig = document.get("signature")
    if not isinstance(sig, Mapping) or sig.get("alg") != "Ed25519":
        return False
    try:
        public.verify(base64.b64decode(str(sig.get("value", ""))), canonical_bytes(document))
    except (InvalidSignature, ValueError):
        return False
    return True
