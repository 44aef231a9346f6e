"""Reads of the auth read tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from schemas.auth import UserInfo
from services.auth.domain import LOCKOUT_WINDOW_SECONDS


async def get_user(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> UserInfo | None:
    row = await conn.fetchrow(
        "SELECT username, scope, created_at, last_login_at FROM users WHERE username = $1", username
    )
    if row is None:
        return None
    return UserInfo(
        username=row["username"],
        scope=row["scope"],
        created_at=row["created_at"].isoformat(),
        last_login_at=row["last_login_at"].isoformat() if row["last_login_at"] else None,
    )


async def user_exists(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE username = $1)", username))


async def active_revocations(conn: asyncpg.Connection | asyncpg.Pool) -> list[tuple[str, float]]:
    rows = await conn.fetch("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > now()")
    return [(r["jti"], r["expires_at"].timestamp()) for r in rows]


async def recent_failures(conn: asyncpg.Connection | asyncpg.Pool, username: str, client_ip: str) -> int:
    since = datetime.now(UTC) - timedelta(seconds=LOCKOUT_WINDOW_SECONDS)
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM login_failures WHERE username = $1 AND client_ip = $2 AND failed_at > $3",
            username,
            client_ip,
            since,
        )
    )
