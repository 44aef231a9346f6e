"""Which channel fields are secret, sealed before they become events and opened only where a call to
the provider needs them (the chat engine, a channel test). The domain rules see plaintext; the
handlers seal what the domain decided and unseal the state it folds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bus import crypto
from schemas.secrets import has_url_password, is_sealed, mask_url, mask_value, mask_whole

SECRET_FIELDS = ("apiKey", "apiKeys", "customHeaders", "proxy")


def _map(fields: dict[str, Any], one: Callable[[str, Any, Callable[[Any], str]], Any]) -> dict[str, Any]:
    """`fields` with every secret value passed through `one(field, value, hint)`."""
    out = dict(fields)
    if isinstance(out.get("apiKey"), str):
        out["apiKey"] = one("apiKey", out["apiKey"], mask_value)
    if isinstance(out.get("apiKeys"), list):
        out["apiKeys"] = [
            {**k, "key": one("apiKeys", k["key"], mask_value)}
            if isinstance(k, dict) and isinstance(k.get("key"), str)
            else k
            for k in out["apiKeys"]
        ]
    if isinstance(out.get("customHeaders"), dict):
        out["customHeaders"] = {
            name: one("customHeaders", v, mask_whole) if isinstance(v, str) else v
            for name, v in out["customHeaders"].items()
        }
    if isinstance(out.get("proxy"), str) and (is_sealed(out["proxy"]) or has_url_password(out["proxy"])):
        out["proxy"] = one("proxy", out["proxy"], mask_url)
    return out


def seal_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Plaintext fields (as validated by the domain) -> the stored form."""
    return _map(fields, lambda _f, v, hint: crypto.seal(v, str(hint(v))))


def unseal_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return _map(fields, lambda _f, v, _hint: crypto.reveal(v))


def stale_fields(fields: dict[str, Any]) -> list[str]:
    """The secret fields not sealed under the current key (an older key, or plaintext from before)."""
    ring = crypto.active()
    stale: set[str] = set()

    def check(name: str, value: Any, _hint: Any) -> Any:
        if not ring.is_current(value):
            stale.add(name)
        return value

    _map(fields, check)
    return [f for f in SECRET_FIELDS if f in stale]
