"""Secrets are write-only (API.md §2): which values hold one, and how a secret reads back.

A secret is stored sealed (encrypted, see `bus/crypto.py`) as the string
`$enc:v1:<key id>:<hint>:<nonce+ciphertext, base64url>`. The hint is the masked form a read shows, so
every reader (edge, relay, audit) masks without ever holding the key."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection
from typing import Any

from schemas.errors import DomainError

MASK = "****"
SEALED_PREFIX = "$enc:v1:"
# Whole-key matches only: `apiKey`, `api_key`, `x-api-key`, `secret`, `password`, `accessToken`,
# `Authorization`, `cookie`; not `maxTokens`.
_SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|password|password_hash|access[_-]?token|auth[_-]?token|(^|[_-])token|^key"
    r"|^authorization|^proxy[_-]?authorization|^cookie|(?-i:[a-z](Key|Token)))$",
    re.IGNORECASE,
)
# Never shown at all, not even masked.
HIDDEN_KEYS = frozenset({"password_hash"})
# Every value under these keys is a secret, whatever its name (a header may carry any credential).
SECRET_MAPS = frozenset({"customHeaders", "custom_headers", "headers", "env"})
# `scheme://user:password@host`: the password part.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<password>[^@\s/]+)(?=@)")


@functools.lru_cache(maxsize=4096)  # keys are a small vocabulary; the relay masks every event
def is_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def split_sealed(value: str) -> tuple[str, str, str]:
    """`$enc:v1:<kid>:<hint>:<blob>` -> (kid, hint, blob). The hint may hold `:` (a masked URL); the
    key id and the base64url blob never do."""
    kid, _, rest = value[len(SEALED_PREFIX) :].partition(":")
    hint, _, blob = rest.rpartition(":")
    return kid, hint, blob


def hint_of(value: Any) -> Any:
    return split_sealed(value)[1] or MASK if is_sealed(value) else value


def mask_url(value: str) -> str:
    """`http://user:pw@proxy:8080` -> `http://user:****@proxy:8080`."""
    if "@" not in value:  # the pattern needs one: most strings skip the regex
        return value
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", value)


def has_url_password(value: Any) -> bool:
    return isinstance(value, str) and bool(_URL_PASSWORD.search(value))


def mask_value(value: Any) -> Any:
    """`sk-abcdef1234` -> `sk-****1234`; short values -> `****`; a sealed value -> its hint."""
    if is_sealed(value):
        return hint_of(value)
    if not isinstance(value, str) or not value:
        return value
    if len(value) <= 8:
        return MASK
    prefix = value[:3] if value[2:3] == "-" else ""
    return f"{prefix}{MASK}{value[-4:]}"


def mask_whole(value: Any) -> Any:
    """Header values and the like: nothing of them is shown."""
    if is_sealed(value):
        return hint_of(value)
    return MASK if isinstance(value, str) and value else value


def _mask_leaf(value: Any) -> Any:
    if is_sealed(value):
        return hint_of(value)
    return mask_url(value) if isinstance(value, str) else value


def mask_at(key: str, value: Any) -> Any:
    """How the value under `key` reads back."""
    if is_secret(key):
        return mask_value(value) if isinstance(value, str) else mask(value)
    if key in SECRET_MAPS and isinstance(value, dict):
        return {k: mask_whole(v) if isinstance(v, str) else mask(v) for k, v in value.items()}
    return mask(value)


def mask(document: Any) -> Any:
    if isinstance(document, dict):
        return {k: mask_at(k, v) for k, v in document.items() if k not in HIDDEN_KEYS}
    if isinstance(document, list):
        return [mask(v) for v in document]
    return _mask_leaf(document)


def keep_masked(current: Any, incoming: Any, *, whole: bool = False) -> Any:
    """A client that sends back a masked secret it read means "unchanged": restore the stored one."""
    if isinstance(incoming, dict):
        out = {}
        for key, value in incoming.items():
            old = current.get(key) if isinstance(current, dict) else None
            if isinstance(value, str) and MASK in value and isinstance(old, str):
                if (is_secret(key) and value == mask_value(old)) or (whole and value == mask_whole(old)):
                    out[key] = old
                    continue
                if value == _mask_leaf(old):
                    out[key] = old
                    continue
            out[key] = keep_masked(old, value, whole=key in SECRET_MAPS)
        return out
    if isinstance(incoming, list):
        olds = current if isinstance(current, list) else []
        return [keep_masked(olds[i] if i < len(olds) else None, v) for i, v in enumerate(incoming)]
    return incoming


def walk_secrets(node: Any, one: Callable[[str, str], str], also: Collection[str] = (), path: str = "") -> Any:
    """`node` with every non-empty string under a secret key, or at a dotted path in `also` (a schema's
    write-only properties; a list's items share its path), replaced by `one(path, value)`."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            sub = f"{path}.{key}" if path else key
            hit = (is_secret(key) or sub in also) and isinstance(value, str) and value
            out[key] = one(sub, value) if hit else walk_secrets(value, one, also, sub)
        return out
    if isinstance(node, list):
        listed = path in also
        return [one(path, v) if listed and isinstance(v, str) and v else walk_secrets(v, one, also, path) for v in node]
    return node


def refuse_sealed_input(patch: Any, path: str = "", *, code: str = "INVALID_CONFIG") -> None:
    """A client never sends a sealed value: one that does copied it from elsewhere (a dump), and
    storing it would let a later reader decrypt it on the client's behalf."""
    if isinstance(patch, dict):
        for key, value in patch.items():
            refuse_sealed_input(value, f"{path}.{key}" if path else key, code=code)
    elif isinstance(patch, list):
        for value in patch:
            refuse_sealed_input(value, path, code=code)
    elif is_sealed(patch):
        raise DomainError(
            code,
            f"invalid config at '{path}': values starting with '$enc:' are reserved",
            details=[{"path": path, "reason": "reserved prefix"}],
        )
