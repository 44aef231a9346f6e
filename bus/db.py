"""asyncpg pools with JSON codecs and the session settings every chatbus connection uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

_json_encode = msgspec.json.Encoder().encode


def _encode_json(value: Any) -> str:
    return _json_encode(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=_encode_json, decoder=msgspec.json.decode, schema="pg_catalog", format="text"
        )


# What "the database went away" looks like to asyncpg. InternalClientError belongs here: a server
# shutting down sends its FATAL to a connection between two statements of a transaction, and the
# next statement on it fails with "another operation is in progress" instead of a connection error.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)

SERVER_SETTINGS = {
    "idle_in_transaction_session_timeout": "15000",
    "application_name": "chatbus",
}


async def _no_session_reset(conn: asyncpg.Connection) -> None:
    """asyncpg's default reset runs `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`
    on every release: a round trip per use of a pooled connection. chatbus leaves no session state on
    a pooled connection (settings are SET LOCAL, advisory locks are transaction locks or released in a
    finally, no LISTEN, no WITH HOLD cursor), and asyncpg still rolls back an open transaction first."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any) -> asyncpg.Pool:
    kwargs.setdefault("reset", _no_session_reset)  # a caller's own reset wins (api/app.py has one)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings=SERVER_SETTINGS,
        command_timeout=30,
        **kwargs,
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, server_settings=SERVER_SETTINGS)
    await _init_connection(conn)
    return conn


async def fetch_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    query: str,
    args: Sequence[Any] = (),
    *,
    order_by: str,
    page: int,
    page_size: int,
    offset: int | None = None,
) -> tuple[list[asyncpg.Record], int]:
    """One page of `query` (a SELECT without ORDER BY or LIMIT; `$n` placeholders for `args`) in
    `order_by` order, and how many rows match in all. One round trip; a second count only for a page
    past the end, where the window count has no row to ride on."""
    n = len(args)
    rows = await conn.fetch(
        f"SELECT *, count(*) OVER () AS _total FROM ({query}) AS _q ORDER BY {order_by} LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        page_size,
        (page - 1) * page_size if offset is None else offset,  # an explicit offset (ChatAI's limit/offset)
    )
    if rows:
        return list(rows), int(rows[0]["_total"])
    return [], int(await conn.fetchval(f"SELECT count(*) FROM ({query}) AS _q", *args))
