"""Secrets are write-only (API.md §2): which keys hold one, and how a secret reads back."""

from __future__ import annotations

import re
from typing import Any

MASK = "****"
# Whole-key matches only: `apiKey`, `api_key`, `secret`, `password`, `accessToken`; not `maxTokens`.
_SECRET_KEY = re.compile(
    r"(api_?key|secret|password|password_hash|access_?token|auth_?token|^token|^key)$", re.IGNORECASE
)
# Never shown at all, not even masked.
HIDDEN_KEYS = frozenset({"password_hash"})


def is_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def mask_value(value: Any) -> Any:
    """`sk-abcdef1234` -> `sk-****1234`; short values -> `****`."""
    if not isinstance(value, str) or not value:
        return value
    if len(value) <= 8:
        return MASK
    prefix = value[:3] if value[2:3] == "-" else ""
    return f"{prefix}{MASK}{value[-4:]}"


def mask(document: Any) -> Any:
    if isinstance(document, dict):
        return {k: mask_value(v) if is_secret(k) else mask(v) for k, v in document.items() if k not in HIDDEN_KEYS}
    if isinstance(document, list):
        return [mask(v) for v in document]
    return document


def keep_masked(current: Any, incoming: Any) -> Any:
    """A client that sends back a masked secret it read means "unchanged": restore the stored one."""
    if isinstance(incoming, dict):
        out = {}
        for key, value in incoming.items():
            old = current.get(key) if isinstance(current, dict) else None
            if is_secret(key) and isinstance(value, str) and MASK in value and value == mask_value(old):
                out[key] = old
            else:
                out[key] = keep_masked(old, value)
        return out
    if isinstance(incoming, list):
        olds = current if isinstance(current, list) else []
        return [keep_masked(olds[i] if i < len(olds) else None, v) for i, v in enumerate(incoming)]
    return incoming
