"""Envelopes that travel on the bus: commands, their replies, and published events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec


def utcnow() -> datetime:
    return datetime.now(UTC)


class Actor(msgspec.Struct, frozen=True):
    subject: str
    scope: str = "admin"


ANONYMOUS = Actor("anonymous", "none")
GROUP_SCOPE_PREFIX = "group:"


def group_scope(group_id: str) -> str:
    """The scope of a token that administers one group."""
    return f"{GROUP_SCOPE_PREFIX}{group_id}"


def group_of(scope: str) -> str | None:
    """The group a `group:<id>` scope administers; None for any other scope."""
    group_id = scope.removeprefix(GROUP_SCOPE_PREFIX) if scope.startswith(GROUP_SCOPE_PREFIX) else ""
    return group_id if group_id.strip() else None


def may_manage_group(scope: str, group_id: str) -> bool:
    return scope == "admin" or group_of(scope) == group_id


# The only commands a caller without a principal may send: logging in, in its three forms.
ANONYMOUS_COMMANDS = frozenset({"auth.login", "auth.consume_link", "group_admin.redeem_code"})
# Who may act: the admin, a group's admin (`group:<id>`), a chat platform adapter on the bus.
PRINCIPAL_SCOPES = frozenset({"admin", "platform"})


def actor_problem(actor: Actor | None, command: str) -> str | None:
    """Why `actor` may not send `command` (`<domain>.<action>`, from the subject it came on), or None."""
    if actor is None:
        return "a command needs an actor"
    if not actor.subject.strip():
        return "the actor has no subject"
    if actor == ANONYMOUS:
        return None if command in ANONYMOUS_COMMANDS else f"{command} needs an authenticated actor"
    scope = actor.scope
    if scope in PRINCIPAL_SCOPES or group_of(scope) is not None:
        return None
    return f"unknown actor scope {scope!r}"


class CommandEnvelope(msgspec.Struct, kw_only=True):
    command_id: uuid.UUID
    type: str
    actor: Actor | None = None
    payload: dict[str, Any] = {}
    expected_version: int | None = None
    request_id: str | None = None
    client_ip: str | None = None
    # Hash of the HTTP request an Idempotency-Key was sent with: the same key with another body is refused.
    request_hash: str | None = None
    issued_at: datetime = msgspec.field(default_factory=utcnow)

    def derive(self, step: str, payload: dict[str, Any] | None = None) -> CommandEnvelope:
        """A sub-command of this one (a step of a chat turn): its id is derived from this command's,
        so a retried command repeats no step that already committed."""
        return CommandEnvelope(
            command_id=uuid.uuid5(self.command_id, step),
            type=f"{self.type}:{step}",
            actor=self.actor,
            payload=payload or {},
            request_id=self.request_id,
            client_ip=self.client_ip,
            request_hash=self.request_hash,
        )


class ErrorInfo(msgspec.Struct):
    code: str
    message: str
    status: int = 400
    details: list[Any] | None = None


class CommandReply(msgspec.Struct, omit_defaults=True):
    ok: bool
    result: Any = None
    error: ErrorInfo | None = None
    version: int | None = None


class EventMessage(msgspec.Struct, kw_only=True):
    """An event as outside subscribers see it on `events.<domain>.<EventType>` (schema exported by
    `chatbus schemas`). `position` is the global position in the Postgres log."""

    id: uuid.UUID
    type: str
    stream: str
    version: int
    position: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    timestamp: datetime
    schema_version: int = 1


command_encoder = msgspec.json.Encoder()
command_decoder = msgspec.json.Decoder(CommandEnvelope)
reply_decoder = msgspec.json.Decoder(CommandReply)
event_message_decoder = msgspec.json.Decoder(EventMessage)
