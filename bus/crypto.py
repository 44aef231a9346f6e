"""Secrets at rest: AES-256-GCM under a keyring, so the event log, the read tables and a database
dump hold ciphertext only.

Keys: `CHATBUS_SECRET_KEY` (32 bytes, base64 or base64url) is the current key when set; otherwise the
keyring file `<data dir>/secret-keys.json` (0600, generated on the first `chatbus up`) names it. Old
keys stay in the file (and in `CHATBUS_SECRET_KEYS_OLD`, comma-separated) so old events still decrypt;
`chatbus secrets rotate` adds a new current key and re-encrypts by appending events. A key's id is a
digest of the key itself, so every process derives the same id without coordination.

The sealed form is a string (`schemas/secrets.py`), so it fits the columns and types a plain value
had, and a value written before encryption existed (plain) still reads as itself."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.secrets import SEALED_PREFIX, is_sealed, mask_value, split_sealed, walk_secrets

KEYRING_FILE = "secret-keys.json"
ENV_KEY = "CHATBUS_SECRET_KEY"
ENV_OLD_KEYS = "CHATBUS_SECRET_KEYS_OLD"
_NONCE = 12


class SecretKeyError(Exception):
    """No key to encrypt with, or a ciphertext this keyring cannot open."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"chatbus-secret-key:" + key).hexdigest()[:12]


def decode_key(text: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            key = decode(padded)
        except (binascii.Error, ValueError):
            continue
        if len(key) == 32:
            return key
    raise SecretKeyError("a secret key must be 32 bytes, base64 or base64url encoded (openssl rand -base64 32)")


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def new_key() -> bytes:
    return secrets.token_bytes(32)


@dataclass
class Keyring:
    keys: dict[str, bytes]
    current: str
    path: Path | None = None  # the keyring file it was read from; re-read when it changes
    mtime: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def of(cls, *keys: bytes) -> Keyring:
        """The first key is the current one."""
        return cls({key_id(k): k for k in keys}, key_id(keys[0]))

    def seal(self, plaintext: str, hint: str) -> str:
        self._refresh()
        nonce = secrets.token_bytes(_NONCE)
        blob = nonce + AESGCM(self.keys[self.current]).encrypt(nonce, plaintext.encode(), self.current.encode())
        # Nothing the hint holds may break the format: no newline, and it never ends the string.
        safe_hint = hint.replace("\n", " ")
        return f"{SEALED_PREFIX}{self.current}:{safe_hint}:{base64.urlsafe_b64encode(blob).decode().rstrip('=')}"

    def open(self, value: str) -> str:
        """The plaintext of a sealed value; any other string is returned as it is (written before
        encryption, or not a secret)."""
        if not is_sealed(value):
            return value
        kid, _, blob = split_sealed(value)
        if kid not in self.keys:
            self._refresh(force=True)
        key = self.keys.get(kid)
        if key is None:
            raise SecretKeyError(f"a secret is encrypted under key {kid}, which this keyring does not hold")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], kid.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SecretKeyError(f"a secret under key {kid} does not decrypt (tampered or wrong key)") from exc

    def is_current(self, value: Any) -> bool:
        return is_sealed(value) and split_sealed(value)[0] == self.current

    def _refresh(self, *, force: bool = False) -> None:
        """Pick up a rotation made by another process (`chatbus secrets rotate`) through the file."""
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime == self.mtime and not force:
            return
        with self._lock:
            fresh = load(self.path.parent)
            self.keys, self.current, self.mtime = fresh.keys, fresh.current, fresh.mtime


def _read_file(path: Path) -> tuple[dict[str, bytes], str | None]:
    doc = json.loads(path.read_text())
    keys = {key_id(k): k for k in (decode_key(t) for t in doc.get("keys", []))}
    current = doc.get("current")
    return keys, current if current in keys else None


def write_keyring(data_dir: str | Path, keys: dict[str, bytes], current: str) -> Path:
    """The keyring file, created 0600 before anything is written to it, replaced atomically."""
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / KEYRING_FILE
    tmp = folder / f".{KEYRING_FILE}.{os.getpid()}.tmp"
    ordered = [keys[current]] + [k for kid, k in keys.items() if kid != current]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"current": current, "keys": [encode_key(k) for k in ordered]}, out, indent=2)
    os.replace(tmp, path)
    return path


def load(data_dir: str | Path | None = None, *, create: bool = False) -> Keyring:
    """The keyring of this process: the environment's key first, else the data dir's file (made when
    `create` and there is none)."""
    folder = Path(data_dir if data_dir is not None else os.environ.get("CHATBUS_DATA_DIR", "./.chatbus"))
    path = folder / KEYRING_FILE
    keys: dict[str, bytes] = {}
    current: str | None = None
    mtime = 0.0
    if path.exists():
        mtime = path.stat().st_mtime
        keys, current = _read_file(path)
    for text in os.environ.get(ENV_OLD_KEYS, "").split(","):
        if text.strip():
            key = decode_key(text)
            keys[key_id(key)] = key
    if os.environ.get(ENV_KEY, "").strip():
        key = decode_key(os.environ[ENV_KEY])
        current = key_id(key)
        keys[current] = key
        return Keyring(keys, current)  # the environment decides; the file only lends old keys
    if current is None:
        if not create:
            raise SecretKeyError(
                f"no secret key: set {ENV_KEY} (openssl rand -base64 32) or start once with `chatbus up`,"
                f" which generates {path}"
            )
        key = new_key()
        current = key_id(key)
        keys[current] = key
        write_keyring(folder, keys, current)
        mtime = path.stat().st_mtime
    return Keyring(keys, current, path, mtime)


def rotate_keyring(data_dir: str | Path) -> Keyring:
    """A new current key in the data dir's file, every old key kept. With CHATBUS_SECRET_KEY set the
    environment names the key, so this only re-reads it (the operator sets the new key there)."""
    ring = load(data_dir, create=True)
    if ring.path is None:
        return ring
    key = new_key()
    keys = {key_id(key): key, **ring.keys}
    write_keyring(data_dir, keys, key_id(key))
    return load(data_dir)


_active: Keyring | None = None


def install(ring: Keyring | None) -> None:
    global _active
    _active = ring


def active() -> Keyring:
    """The process keyring, loaded from the environment / data dir on first use."""
    global _active
    if _active is None:
        _active = load()
    return _active


def seal(plaintext: str, hint: str) -> str:
    return active().seal(plaintext, hint)


def reveal(value: str) -> str:
    return active().open(value) if is_sealed(value) else value


def seal_document(document: dict[str, Any], also: Collection[str] = ()) -> dict[str, Any]:
    """A free-form document (the config, a plugin's config) with its plaintext secrets sealed (secret
    keys and the dotted paths in `also`); values already sealed (kept from the stored one) stay as
    they are. The keyring is asked for only when there is a secret: a document without one needs no key."""
    sealed: dict[str, Any] = walk_secrets(
        document, lambda _p, v: v if is_sealed(v) else seal(v, str(mask_value(v))), also
    )
    return sealed


def reseal_document(document: dict[str, Any], also: Collection[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """Every secret not sealed under the current key, sealed under it; with the paths that changed."""
    ring = active()
    paths: list[str] = []

    def one(path: str, value: str) -> str:
        if ring.is_current(value):
            return value
        paths.append(path)
        plain = ring.open(value)
        return ring.seal(plain, str(mask_value(plain)))

    resealed: dict[str, Any] = walk_secrets(document, one, also)
    return resealed, paths


def open_document(document: Any) -> Any:
    """Every sealed string of a document opened, wherever it sits (what the domain validates, what a
    plugin process is given)."""
    if isinstance(document, dict):
        return {k: open_document(v) for k, v in document.items()}
    if isinstance(document, list):
        return [open_document(v) for v in document]
    return reveal(document) if is_sealed(document) else document
