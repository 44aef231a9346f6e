"""Auth: pure state and rules of a user and of login links."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace

from bus.events import EventCatalog
from schemas.auth import (
    AuthEvent,
    LoginFailed,
    LoginLinkConsumed,
    LoginLinkCreated,
    LoginSucceeded,
    PasswordChanged,
    TokenRevoked,
    UserCreated,
)
from schemas.errors import DomainError

EVENTS = EventCatalog.of(
    "auth",
    UserCreated,
    PasswordChanged,
    LoginSucceeded,
    LoginFailed,
    TokenRevoked,
    LoginLinkConsumed,
    LoginLinkCreated,
)
LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW_SECONDS = 15 * 60


def user_stream(username: str) -> str:
    return f"user-{username}"


def link_stream(jti: str) -> str:
    return f"loginlink-{jti}"


def login_pair_lock(username: str, client_ip: str) -> int:
    """The Postgres advisory-lock key of a user+address pair: its logins are evaluated one at a time."""
    digest = hashlib.sha256(f"login\x00{username}\x00{client_ip}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class UserState:
    username: str
    exists: bool = False
    password_hash: str | None = None
    scope: str = "admin"
    version: int = 0
    # Counts password changes; tokens and links issued in an older epoch are no longer valid.
    password_epoch: int = 0


def evolve(state: UserState, event: AuthEvent) -> UserState:
    version = state.version + 1
    match event:
        case UserCreated(password_hash=password_hash, scope=scope):
            return UserState(state.username, True, password_hash, scope, version)
        case PasswordChanged(password_hash=password_hash):
            return replace(state, password_hash=password_hash, password_epoch=state.password_epoch + 1, version=version)
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


def decide_login(state: UserState, recent_failures: int, password_ok: bool, client_ip: str) -> list[AuthEvent]:
    """One attempt, after the lockout check. Unknown names fail alike (no enumeration)."""
    check_lockout(recent_failures)
    if password_ok and state.exists:
        return [LoginSucceeded(client_ip=client_ip)]
    return [LoginFailed(client_ip=client_ip, reason="bad_password" if state.exists else "unknown_user")]


def decide_revoke(already_revoked: bool, jti: str, expires_at: float) -> list[AuthEvent]:
    """A token or link is revoked once; a second revocation (a concurrent refresh) is refused."""
    if already_revoked:
        raise DomainError("INVALID_TOKEN", "token has been revoked")
    return [TokenRevoked(jti=jti, expires_at=expires_at)]


def decide_consume_link(consumed: bool, jti: str, username: str) -> list[AuthEvent]:
    if consumed:
        raise DomainError("INVALID_TOKEN", "this login link has already been used")
    return [LoginLinkConsumed(jti=jti, username=username)]


def decide_create_link(state: UserState, permanent: bool, now: float, ttl: int) -> LoginLinkCreated:
    if not state.exists:
        raise DomainError("NOT_FOUND", "user not found")
    return LoginLinkCreated(
        jti=uuid.uuid4().hex, permanent=permanent, expires_at=float(int(now) + ttl), password_epoch=state.password_epoch
    )
