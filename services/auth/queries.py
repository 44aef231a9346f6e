"""Reads of the auth read tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from bus.db import fetch_page
from schemas.auth import LoginLinkInfo, UserInfo
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


async def is_revoked(conn: asyncpg.Connection | asyncpg.Pool, jti: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)", jti))


async def password_epochs(conn: asyncpg.Connection | asyncpg.Pool) -> list[tuple[str, int]]:
    """Every user whose password changed at least once, with the epoch it is in."""
    rows = await conn.fetch("SELECT username, password_epoch FROM users WHERE password_epoch > 0")
    return [(r["username"], r["password_epoch"]) for r in rows]


async def password_epoch(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> int:
    return int(await conn.fetchval("SELECT password_epoch FROM users WHERE username = $1", username) or 0)


@dataclass(frozen=True)
class LinkRow:
    username: str
    expires_at: float
    revoked: bool


async def get_link(conn: asyncpg.Connection | asyncpg.Pool, jti: str) -> LinkRow | None:
    row = await conn.fetchrow("SELECT username, expires_at, revoked_at FROM login_links WHERE jti = $1", jti)
    if row is None:
        return None
    return LinkRow(row["username"], row["expires_at"].timestamp(), row["revoked_at"] is not None)


async def list_links(
    conn: asyncpg.Connection | asyncpg.Pool, username: str, *, page: int, page_size: int
) -> tuple[list[LoginLinkInfo], int]:
    """The user's links that still work: not revoked, not expired, not voided by a password change."""
    rows, total = await fetch_page(
        conn,
        """SELECT l.jti, l.created_at, l.permanent, l.expires_at
           FROM login_links l JOIN users u ON u.username = l.username
           WHERE l.username = $1 AND l.revoked_at IS NULL AND l.expires_at > now()
             AND l.password_epoch >= u.password_epoch""",
        [username],
        order_by="created_at DESC, jti",
        page=page,
        page_size=page_size,
    )
    items = [
        LoginLinkInfo(
            id=r["jti"],
            created_at=r["created_at"].isoformat(),
            permanent=r["permanent"],
            expires_at=r["expires_at"].isoformat(),
        )
        for r in rows
    ]
    return items, total
