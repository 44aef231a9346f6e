"""Group admin: pure rules for group overrides and single-use login codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from bus.events import EventCatalog
from schemas.errors import DomainError
from schemas.group_admin import (
    GroupAdminEvent,
    GroupConfigDeleted,
    GroupConfigSet,
    GroupLoginCodeIssued,
    GroupLoginCodeRedeemed,
    GroupOverrides,
)
from services.config.domain import changed_paths, deep_merge
from services.rules import require_version

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud from a chat
CODE_LENGTH = 6
CODE_TTL_SECONDS = 10 * 60


def group_stream(group_id: str) -> str:
    return f"groupconfig-{group_id}"


def code_stream(code: str, key: bytes) -> str:
    # The stream id names a keyed hash, never the code: the audit log must not hand out logins. Keyed,
    # because 32^6 codes hashed with plain sha256 are brute-forced from a stream id in minutes.
    return "groupcode-" + hmac.new(key, code.upper().encode(), hashlib.sha256).hexdigest()[:40]


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True)
class GroupState:
    group_id: str
    overrides: dict[str, Any] = field(default_factory=dict)
    exists: bool = False
    version: int = 0


EVENTS = EventCatalog.of(
    "group_admin", GroupConfigSet, GroupConfigDeleted, GroupLoginCodeIssued, GroupLoginCodeRedeemed
)


def evolve(state: GroupState, event: GroupAdminEvent) -> GroupState:
    version = state.version + 1
    match event:
        case GroupConfigSet(overrides=overrides):
            return GroupState(state.group_id, overrides, True, version)
        case GroupConfigDeleted():
            return GroupState(state.group_id, {}, False, version)
    return replace(state, version=version)


@dataclass(frozen=True)
class CodeState:
    group_id: str | None = None
    expires_at: float = 0.0
    redeemed: bool = False


def evolve_code(state: CodeState, event: GroupAdminEvent) -> CodeState:
    match event:
        case GroupLoginCodeIssued(group_id=group_id, expires_at=expires_at):
            return CodeState(group_id, expires_at, False)
        case GroupLoginCodeRedeemed():
            return replace(state, redeemed=True)
    return state


def validate_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    try:
        normalised: dict[str, Any] = msgspec.to_builtins(msgspec.convert(overrides, GroupOverrides))
        return normalised
    except msgspec.ValidationError as exc:
        message = str(exc)
        path = message.split("at `$.", 1)[1].rstrip("`") if "at `$." in message else ""
        raise DomainError(
            "INVALID_CONFIG",
            f"invalid group config at '{path}': {message}",
            details=[{"path": path, "reason": message}],
        ) from exc


def decide_update(state: GroupState, patch: dict[str, Any], expected: int | None) -> list[GroupAdminEvent]:
    require_version(f"group '{state.group_id}' config", state.version, expected)
    if not patch:
        raise DomainError("INVALID_CONFIG", "empty group config update")
    overrides = validate_overrides(deep_merge(state.overrides, patch))
    paths = changed_paths(state.overrides, overrides)
    if not paths and state.exists:
        return []
    return [GroupConfigSet(group_id=state.group_id, overrides=overrides, paths=paths)]


def decide_delete(state: GroupState) -> list[GroupAdminEvent]:
    if not state.exists:
        raise DomainError("NOT_FOUND", f"group '{state.group_id}' has no config of its own")
    return [GroupConfigDeleted(group_id=state.group_id)]


def decide_issue(existing: CodeState, group_id: str, issued_by: str, now: float) -> list[GroupLoginCodeIssued]:
    if existing.group_id is not None:
        raise DomainError("CONFLICT", "code collision, issue again")
    return [GroupLoginCodeIssued(group_id=group_id, expires_at=now + CODE_TTL_SECONDS, issued_by=issued_by)]


def decide_redeem(state: CodeState, now: float) -> list[GroupAdminEvent]:
    if state.group_id is None or state.redeemed or state.expires_at <= now:
        # One message for unknown, used and expired codes: a guesser learns nothing.
        raise DomainError("INVALID_CREDENTIALS", "invalid or expired code")
    return [GroupLoginCodeRedeemed(group_id=state.group_id)]


def effective_config(group_id: str, overrides: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The group's settings: the global config's defaults with the group's overrides on top."""
    trigger = config["trigger"]
    defaults = {
        "enabled": True,
        "presetId": config["presets"]["defaultId"],
        "channelId": config["llm"]["defaultChannelId"],
        "model": config["llm"]["defaultModel"],
        "trigger": {k: trigger["group"][k] for k in ("at", "prefixes", "keywords", "randomRate")},
        "blacklistUsers": trigger["blacklistUsers"],
        "whitelistUsers": trigger["whitelistUsers"],
        "usageLimit": {"perUserPerDay": 0, "perGroupPerDay": 0},
        "tools": {
            "allowed": [],
            "disabled": config["tools"]["disabledTools"],
            "allowDangerous": config["tools"]["allowDangerous"],
        },
    }
    return {"groupId": group_id, **deep_merge(defaults, overrides)}
