"""The auth read tables: users, revoked_tokens, login_failures, login_links."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from bus.eventstore import RecordedEvent
from bus.projections import Projection


async def project(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    if not event.stream_id.startswith("user-"):
        return
    username = event.stream_id[len("user-") :]
    data = event.data
    kind = event.event_type
    if kind == "UserCreated":
        await conn.execute(
            "INSERT INTO users (username, password_hash, scope, created_at, version) VALUES ($1, $2, $3, $4, $5)",
            username,
            data["password_hash"],
            data.get("scope", "admin"),
            event.recorded_at,
            event.stream_version,
        )
        return
    await conn.execute("UPDATE users SET version = $2 WHERE username = $1", username, event.stream_version)
    if kind == "PasswordChanged":
        await conn.execute(
            "UPDATE users SET password_hash = $2, password_epoch = password_epoch + 1 WHERE username = $1",
            username,
            data["password_hash"],
        )
    elif kind == "LoginLinkCreated":
        await conn.execute(
            """INSERT INTO login_links (jti, username, permanent, password_epoch, created_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
            data["jti"],
            username,
            data["permanent"],
            data.get("password_epoch", 0),
            event.recorded_at,
            datetime.fromtimestamp(data["expires_at"], UTC),
        )
    elif kind == "LoginSucceeded":
        await conn.execute("UPDATE users SET last_login_at = $2 WHERE username = $1", username, event.recorded_at)
        await conn.execute(
            "DELETE FROM login_failures WHERE username = $1 AND client_ip = $2", username, data["client_ip"]
        )
    elif kind == "LoginFailed":
        await conn.execute(
            "INSERT INTO login_failures (username, client_ip, failed_at) VALUES ($1, $2, $3)",
            username,
            data["client_ip"],
            event.recorded_at,
        )
    elif kind == "TokenRevoked":
        await conn.execute(
            "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            data["jti"],
            datetime.fromtimestamp(data["expires_at"], UTC),
            event.recorded_at,
        )
        await conn.execute(
            "UPDATE login_links SET revoked_at = $2 WHERE jti = $1 AND revoked_at IS NULL",
            data["jti"],
            event.recorded_at,
        )


PROJECTION = Projection(name="auth", tables=("users", "revoked_tokens", "login_failures", "login_links"), apply=project)
