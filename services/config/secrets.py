"""Secrets in the config document (keys such as `apiKey`, `token`, `password`, mostly in the free-form
`bot` section) are sealed before the document becomes an event, like a channel's keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bus import crypto
from schemas.errors import DomainError
from schemas.secrets import is_sealed, is_secret, mask_value


def _walk(node: Any, one: Callable[[str, str], str], path: str = "") -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            sub = f"{path}.{key}" if path else key
            out[key] = (
                one(sub, value) if is_secret(key) and isinstance(value, str) and value else _walk(value, one, sub)
            )
        return out
    if isinstance(node, list):
        return [_walk(v, one, path) for v in node]
    return node


def seal_document(document: dict[str, Any]) -> dict[str, Any]:
    """Plaintext secrets sealed; values already sealed (kept from the stored document) stay as they are."""
    # The keyring is asked for only when there is a secret: a document without one needs no key.
    sealed: dict[str, Any] = _walk(document, lambda _p, v: v if is_sealed(v) else crypto.seal(v, str(mask_value(v))))
    return sealed


def reseal_document(document: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Every secret not sealed under the current key, sealed under it; with the paths that changed."""
    ring = crypto.active()
    paths: list[str] = []

    def one(path: str, value: str) -> str:
        if ring.is_current(value):
            return value
        paths.append(path)
        plain = ring.open(value)
        return ring.seal(plain, str(mask_value(plain)))

    return _walk(document, one), paths


def refuse_sealed_input(patch: Any, path: str = "") -> None:
    """A client never sends a sealed value: one that does copied it from elsewhere (a dump), and
    storing it would let a later reader decrypt it on the client's behalf."""
    if isinstance(patch, dict):
        for key, value in patch.items():
            refuse_sealed_input(value, f"{path}.{key}" if path else key)
    elif isinstance(patch, list):
        for value in patch:
            refuse_sealed_input(value, path)
    elif is_sealed(patch):
        raise DomainError(
            "INVALID_CONFIG",
            f"invalid config at '{path}': values starting with '$enc:' are reserved",
            details=[{"path": path, "reason": "reserved prefix"}],
        )
