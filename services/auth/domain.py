"""Auth: pure state and rules of a user and of single-use login links."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bus.events import EventCatalog
from schemas.auth import (
    AuthEvent,
    LoginFailed,
    LoginLinkConsumed,
    LoginSucceeded,
    PasswordChanged,
    TokenRevoked,
    UserCreated,
)
from schemas.errors import DomainError

LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW_SECONDS = 15 * 60


def user_stream(username: str) -> str:
    return f"user-{username}"


def link_stream(jti: str) -> str:
    return f"loginlink-{jti}"


@dataclass(frozen=True)
class UserState:
    username: str
    exists: bool = False
    password_hash: str | None = None
    scope: str = "admin"
    version: int = 0


EVENTS = EventCatalog.of(
    "auth", UserCreated, PasswordChanged, LoginSucceeded, LoginFailed, TokenRevoked, LoginLinkConsumed
)


def evolve(state: UserState, event: AuthEvent) -> UserState:
    version = state.version + 1
    match event:
        case UserCreated(password_hash=password_hash, scope=scope):
            return UserState(state.username, True, password_hash, scope, version)
        case PasswordChanged(password_hash=password_hash):
            return replace(state, password_hash=password_hash, version=version)
    return replace(state, version=version)


def evolve_link(consumed: bool, event: AuthEvent) -> bool:
    return consumed or isinstance(event, LoginLinkConsumed)


def decide_set_password(state: UserState, password_hash: str, scope: str = "admin") -> list[AuthEvent]:
    """Create the user, or change the password of an existing one (admin bootstrap, `set-password`)."""
    if not state.exists:
        return [UserCreated(username=state.username, password_hash=password_hash, scope=scope)]
    return [PasswordChanged(password_hash=password_hash)]


def decide_change_password(state: UserState, old_ok: bool, new_hash: str) -> list[AuthEvent]:
    if not state.exists:
        raise DomainError("NOT_FOUND", "user not found")
    if not old_ok:
        raise DomainError("INVALID_CREDENTIALS", "the old password is wrong")
    return [PasswordChanged(password_hash=new_hash)]


def check_lockout(recent_failures: int) -> None:
    if recent_failures >= LOCKOUT_FAILURES:
        raise DomainError(
            "RATE_LIMITED",
            "too many failed logins from this address; try again later",
            details=[{"retryAfter": LOCKOUT_WINDOW_SECONDS}],
        )


def decide_consume_link(consumed: bool, jti: str, username: str) -> list[AuthEvent]:
    if consumed:
        raise DomainError("INVALID_TOKEN", "this login link has already been used")
    return [LoginLinkConsumed(jti=jti, username=username)]
