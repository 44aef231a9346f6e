"""Channels: pure state and rules, including health (cooldown on 429, `error` after N failures)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from bus.events import EventCatalog
from schemas.channels import (
    ChannelCreated,
    ChannelDeleted,
    ChannelEvent,
    ChannelFields,
    ChannelStatus,
    ChannelStatusChanged,
    ChannelUpdated,
)
from schemas.errors import DomainError
from schemas.secrets import keep_masked
from services.rules import require_version

ERROR_AFTER_FAILURES = 3
DEFAULT_COOLDOWN_SECONDS = 30.0
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def stream_id(channel_id: str) -> str:
    return f"channel-{channel_id}"


def derive_id(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name.strip()).strip("-")[:40]
    return f"{slug}-{uuid.uuid4().hex[:6]}" if slug else f"channel-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class ChannelState:
    id: str
    exists: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    status: ChannelStatus = "idle"
    consecutive_failures: int = 0
    cooldown_until: float | None = None
    version: int = 0


EVENTS = EventCatalog.of("channels", ChannelCreated, ChannelUpdated, ChannelDeleted, ChannelStatusChanged)


def evolve(state: ChannelState, event: ChannelEvent) -> ChannelState:
    version = state.version + 1
    match event:
        case ChannelCreated(fields=fields):
            return ChannelState(state.id, True, dict(fields), "idle", 0, None, version)
        case ChannelUpdated(changes=changes):
            return replace(state, fields={**state.fields, **changes}, version=version)
        case ChannelDeleted():
            return ChannelState(state.id, version=version)
        case ChannelStatusChanged():
            return replace(
                state,
                status=event.status,
                consecutive_failures=event.consecutive_failures,
                cooldown_until=event.cooldown_until,
                version=version,
            )
    return replace(state, version=version)


def validate_fields(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        fields = msgspec.convert(raw, ChannelFields)
    except msgspec.ValidationError as exc:
        raise DomainError("VALIDATION_ERROR", f"invalid channel: {exc}", details=[str(exc)]) from exc
    for name, url in (("baseUrl", fields.base_url), ("proxy", fields.proxy)):
        if url is not None and not _valid_url(url):
            raise DomainError(
                "VALIDATION_ERROR",
                f"invalid channel: {name} is not a usable URL",
                details=[{"field": name, "reason": "not a valid http(s) URL with a host"}],
            )
    builtins: dict[str, Any] = msgspec.to_builtins(fields)
    return builtins


def _valid_url(url: str) -> bool:
    """What the HTTP client will accept: a scheme, a host that encodes (IDNA), a port in range."""
    import httpx  # here: an edge imports this module's package for its queries and holds no HTTP client

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return False
    return bool(parsed.host) and parsed.scheme in ("http", "https", "socks5", "socks5h")


def _require(state: ChannelState) -> None:
    if not state.exists:
        raise DomainError("CHANNEL_NOT_FOUND", f"channel '{state.id}' not found")


def decide_create(state: ChannelState, fields: dict[str, Any]) -> list[ChannelEvent]:
    if not ID_PATTERN.fullmatch(state.id):
        raise DomainError("VALIDATION_ERROR", "id must be 1..64 characters of [A-Za-z0-9_-]")
    if state.exists:
        raise DomainError("CONFLICT", f"channel '{state.id}' already exists")
    return [ChannelCreated(id=state.id, fields=validate_fields(fields))]


def decide_update(state: ChannelState, changes: dict[str, Any], expected: int | None) -> list[ChannelEvent]:
    _require(state)
    require_version(f"channel '{state.id}'", state.version, expected)
    merged = validate_fields({**state.fields, **keep_masked(state.fields, changes)})
    effective = {k: merged.get(k) for k in changes if state.fields.get(k) != merged.get(k)}
    events: list[ChannelEvent] = [ChannelUpdated(changes=effective)] if effective else []
    if "enabled" in effective:
        status: ChannelStatus = "idle" if merged["enabled"] else "disabled"
        events.append(ChannelStatusChanged(status=status))
    return events


def decide_delete(state: ChannelState) -> list[ChannelEvent]:
    _require(state)
    return [ChannelDeleted(id=state.id)]


def decide_health(
    state: ChannelState, *, ok: bool, error: str | None, retry_after: float | None, tested: bool, now: float
) -> list[ChannelEvent]:
    """The outcome of a call or a test. A channel in `error` leaves it only through a successful test."""
    _require(state)
    if not state.fields.get("enabled", True):
        return []
    if ok:
        if state.status == "error" and not tested:
            return []
        if state.status == "active" and state.consecutive_failures == 0 and not tested:
            return []
        return [ChannelStatusChanged(status="active", tested_at=now if tested else None)]
    failures = state.consecutive_failures + 1
    # A 429 cools a channel down, but must not lift an `error` (a cooldown ends by itself; error does not).
    if retry_after is not None and (state.status != "error" or tested):
        until = now + max(1.0, retry_after)
        return [
            ChannelStatusChanged(
                status="cooldown",
                last_error=error,
                cooldown_until=until,
                consecutive_failures=failures,
                tested_at=now if tested else None,
            )
        ]
    status: ChannelStatus = "error" if failures >= ERROR_AFTER_FAILURES or tested else state.status
    if status in ("idle", "cooldown"):  # a failure after the cooldown ended: in use again, not cooling
        status = "active"
    return [
        ChannelStatusChanged(
            status=status,
            last_error=error,
            consecutive_failures=failures,
            tested_at=now if tested else None,
        )
    ]
