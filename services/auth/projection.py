"""The auth read tables: users, revoked_tokens, login_failures, login_links."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection
from schemas.auth import LoginFailed, LoginLinkCreated, LoginSucceeded, PasswordChanged, TokenRevoked, UserCreated
from services.auth.domain import EVENTS


def _username(recorded: RecordedEvent) -> str:
    return recorded.stream_id.removeprefix("user-")


async def _bump(conn: asyncpg.Connection, recorded: RecordedEvent) -> None:
    await conn.execute(
        "UPDATE users SET version = $2 WHERE username = $1", _username(recorded), recorded.stream_version
    )


async def user_created(conn: asyncpg.Connection, recorded: RecordedEvent, event: UserCreated) -> None:
    await conn.execute(
        "INSERT INTO users (username, password_hash, scope, created_at, version) VALUES ($1, $2, $3, $4, $5)",
        _username(recorded),
        event.password_hash,
        event.scope,
        recorded.recorded_at,
        recorded.stream_version,
    )


async def password_changed(conn: asyncpg.Connection, recorded: RecordedEvent, event: PasswordChanged) -> None:
    await conn.execute(
        """UPDATE users SET password_hash = $2, password_epoch = password_epoch + 1, version = $3
           WHERE username = $1""",
        _username(recorded),
        event.password_hash,
        recorded.stream_version,
    )


async def login_succeeded(conn: asyncpg.Connection, recorded: RecordedEvent, event: LoginSucceeded) -> None:
    username = _username(recorded)
    await conn.execute(
        "UPDATE users SET last_login_at = $2, version = $3 WHERE username = $1",
        username,
        recorded.recorded_at,
        recorded.stream_version,
    )
    await conn.execute("DELETE FROM login_failures WHERE username = $1 AND client_ip = $2", username, event.client_ip)


async def login_failed(conn: asyncpg.Connection, recorded: RecordedEvent, event: LoginFailed) -> None:
    await _bump(conn, recorded)
    await conn.execute(
        "INSERT INTO login_failures (username, client_ip, failed_at) VALUES ($1, $2, $3)",
        _username(recorded),
        event.client_ip,
        recorded.recorded_at,
    )


async def token_revoked(conn: asyncpg.Connection, recorded: RecordedEvent, event: TokenRevoked) -> None:
    await _bump(conn, recorded)
    await conn.execute(
        "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        event.jti,
        datetime.fromtimestamp(event.expires_at, UTC),
        recorded.recorded_at,
    )
    await conn.execute(
        "UPDATE login_links SET revoked_at = $2 WHERE jti = $1 AND revoked_at IS NULL", event.jti, recorded.recorded_at
    )


async def link_created(conn: asyncpg.Connection, recorded: RecordedEvent, event: LoginLinkCreated) -> None:
    await _bump(conn, recorded)
    await conn.execute(
        """INSERT INTO login_links (jti, username, permanent, password_epoch, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        event.jti,
        _username(recorded),
        event.permanent,
        event.password_epoch,
        recorded.recorded_at,
        datetime.fromtimestamp(event.expires_at, UTC),
    )


PROJECTION = Projection(
    name="auth",
    tables=("users", "revoked_tokens", "login_failures", "login_links"),
    handlers={
        UserCreated: user_created,
        PasswordChanged: password_changed,
        LoginSucceeded: login_succeeded,
        LoginFailed: login_failed,
        TokenRevoked: token_revoked,
        LoginLinkCreated: link_created,
    },
    catalog=EVENTS,
)
