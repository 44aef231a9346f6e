"""Platforms: pure rules. A platform is one bot account on one protocol (OneBot v11 for now)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from typing import Any

from bus.events import EventCatalog
from schemas.errors import DomainError
from schemas.platforms import PLATFORM_TYPES, PlatformCreated, PlatformDeleted, PlatformsEvent, PlatformUpdated
from schemas.secrets import MASK, is_sealed
from services.rules import require_version

EVENTS = EventCatalog.of("platforms", PlatformCreated, PlatformUpdated, PlatformDeleted)
TYPE_ALIASES = {"onebot11": "onebot11", "onebot": "onebot11", "aiocqhttp": "onebot11", "qq": "onebot11"}
_TOP_LEVEL_CONFIG = {
    "accessToken": "accessToken",
    "access_token": "accessToken",
    "selfId": "selfId",
    "self_id": "selfId",
}
_NAME_MAX = 100
_TOKEN_MAX = 500


def platform_stream(platform_id: str) -> str:
    return f"platform-{platform_id}"


@dataclass(frozen=True)
class PlatformState:
    id: str
    fields: dict[str, Any] = field(default_factory=dict)
    exists: bool = False
    version: int = 0


def evolve(state: PlatformState, event: PlatformsEvent) -> PlatformState:
    version = state.version + 1
    match event:
        case PlatformCreated(fields=fields):
            return PlatformState(state.id, fields, True, version)
        case PlatformUpdated(changes=changes):
            merged = {**state.fields, **changes}
            if "config" in changes:
                merged["config"] = {**state.fields.get("config", {}), **changes["config"]}
            return PlatformState(state.id, merged, True, version)
        case PlatformDeleted():
            return PlatformState(state.id, {}, False, version)
    return replace(state, version=version)


def _invalid(path: str, reason: str) -> DomainError:
    return DomainError("VALIDATION_ERROR", f"{path}: {reason}", details=[{"path": path, "reason": reason}])


def _string(body: dict[str, Any], key: str, limit: int) -> str:
    value = body[key]
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a QQ number sent as a number
    if not isinstance(value, str) or len(value) > limit:
        raise _invalid(key, f"must be a string of at most {limit} characters")
    return value


def normalize(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """A NekoBot or ChatAI body -> the stored field names. Accepts `enable` for `enabled`,
    `displayName` for `display_name`, and the config keys at the top level or under `config`."""
    out: dict[str, Any] = {}
    if "type" in body:
        kind = body["type"]
        if not isinstance(kind, str) or kind.lower() not in TYPE_ALIASES:
            raise _invalid("type", f"must be one of {', '.join(PLATFORM_TYPES)}")
        out["type"] = TYPE_ALIASES[kind.lower()]
    for key in ("name", "display_name", "displayName"):
        if key in body:
            target = "name" if key == "name" else "display_name"
            out[target] = _string(body, key, _NAME_MAX)
    for key in ("enabled", "enable"):
        if key in body:
            if not isinstance(body[key], bool):
                raise _invalid(key, "must be a boolean")
            out["enabled"] = body[key]
    config: dict[str, Any] = {}
    raw = body.get("config", {})
    if not isinstance(raw, dict):
        raise _invalid("config", "must be an object")
    sources = [(k, body) for k in _TOP_LEVEL_CONFIG if k in body] + [(k, raw) for k in raw]
    for key, source in sources:
        if key not in _TOP_LEVEL_CONFIG:
            raise _invalid(f"config.{key}", "unknown field")
        limit = _TOKEN_MAX if _TOP_LEVEL_CONFIG[key] == "accessToken" else 32
        value = _string(source, key, limit)
        if _TOP_LEVEL_CONFIG[key] == "selfId" and value and not value.isdigit():
            raise _invalid(f"config.{key}", "must be the bot's numeric account id")
        config[_TOP_LEVEL_CONFIG[key]] = value
    if config:
        out["config"] = config
    if not partial:
        out.setdefault("type", "onebot11")
        out.setdefault("enabled", True)
        out.setdefault("name", out.get("display_name", ""))
        out.setdefault("display_name", out["name"])
        out["config"] = {"accessToken": "", "selfId": "", **config}
    return out


def _keep_masked(old: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A client that sends back the masked token it read means "unchanged"."""
    config = changes.get("config")
    if not config or "accessToken" not in config:
        return changes
    token = config["accessToken"]
    if is_sealed(token) or MASK in token:
        config = {k: v for k, v in config.items() if k != "accessToken"}
        changes = {**changes, "config": config} if config else {k: v for k, v in changes.items() if k != "config"}
    return changes


def _self_id_taken(self_id: str, others: dict[str, str]) -> None:
    if self_id and self_id in others.values():
        owner = next(pid for pid, sid in others.items() if sid == self_id)
        raise DomainError("CONFLICT", f"platform '{owner}' already serves bot {self_id}")


def decide_create(state: PlatformState, body: dict[str, Any], self_ids: dict[str, str]) -> list[PlatformCreated]:
    """`self_ids`: platform id -> self id of every other platform (one bot, one platform)."""
    if state.exists:
        raise DomainError("CONFLICT", f"platform '{state.id}' already exists")
    fields = normalize(body, partial=False)
    if not fields["name"]:
        fields["name"] = fields["display_name"] = state.id
    _self_id_taken(fields["config"]["selfId"], self_ids)
    return [PlatformCreated(id=state.id, fields=fields)]


def decide_update(
    state: PlatformState, body: dict[str, Any], expected: int | None, self_ids: dict[str, str]
) -> list[PlatformUpdated]:
    if not state.exists:
        raise DomainError("PLATFORM_NOT_FOUND", f"platform '{state.id}' not found")
    require_version(f"platform '{state.id}'", state.version, expected)
    changes = _keep_masked(state.fields, normalize(body, partial=True))
    if "selfId" in changes.get("config", {}):
        _self_id_taken(changes["config"]["selfId"], self_ids)
    current = state.fields
    really = {
        k: v
        for k, v in changes.items()
        if (k == "config" and any(current.get("config", {}).get(ck) != cv for ck, cv in v.items()))
        or (k != "config" and current.get(k) != v)
    }
    return [PlatformUpdated(id=state.id, changes=really)] if really else []


def decide_delete(state: PlatformState) -> list[PlatformDeleted]:
    if not state.exists:
        raise DomainError("PLATFORM_NOT_FOUND", f"platform '{state.id}' not found")
    return [PlatformDeleted(id=state.id)]


def token_matches(expected: str, given: str) -> bool:
    """Constant time; an empty configured token accepts only an empty one (NapCat's `Bearer `)."""
    return hmac.compare_digest(expected.encode(), given.encode())


def pick_platform(candidates: list[tuple[str, dict[str, Any]]], self_id: str, token: str) -> str | None:
    """The enabled OneBot platform this bot may connect as: one whose selfId is the bot's, else one
    that names no selfId; the token must match (plaintext `accessToken`). A platform without a token
    takes only the bot whose selfId it names: an open wildcard would let anyone in."""
    exact = [(pid, f) for pid, f in candidates if f.get("config", {}).get("selfId") == self_id]
    wildcard = [(pid, f) for pid, f in candidates if not f.get("config", {}).get("selfId")]
    for group, needs_token in ((exact, False), (wildcard, True)):
        for pid, fields in group:
            if not fields.get("enabled", True) or fields.get("type") != "onebot11":
                continue
            expected = str(fields.get("config", {}).get("accessToken", ""))
            if needs_token and not expected:
                continue
            if token_matches(expected, token):
                return pid
    return None


def refused_platform(candidates: list[tuple[str, dict[str, Any]]], self_id: str) -> str | None:
    """When `pick_platform` found none: the enabled platform naming this bot, whose token it missed
    (that platform is in `error`); None when no platform names it or the one that does is disabled."""
    for pid, fields in candidates:
        config = fields.get("config", {})
        if config.get("selfId") == self_id and fields.get("enabled", True) and fields.get("type") == "onebot11":
            return pid
    return None
