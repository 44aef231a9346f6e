"""Replay equality over *every* read table, each with data in it.

The tables come from the code: `read_tables(PROJECTIONS)` is what `replay` truncates and rebuilds. A table
in the database that is neither one of those nor listed below as the log's own bookkeeping fails the test,
and so does a projection that writes a table it does not declare: such a table would silently keep its
rows through a replay."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from typing import Any

import asyncpg

from bus.projections import read_tables, table_columns
from services.registry import PROJECTIONS
from tests.e2e.test_chat import add_channel
from tests.fakes.llm import FakeProvider, reply, status
from tests.fakes.plugins import example_zip, upload
from tests.stack import Stack

# Tables that are not rebuilt from the log, and why.
NOT_READ_TABLES = {
    "events": "the log itself",
    "processed_commands": "command idempotency records, written beside the events",
    "checkpoints": "positions of catch-up projections",
    "instance_secrets": "the JWT secret of this installation",
    "logs": "the log sink, not derived from events",
    "schema_migrations": "migration bookkeeping",
    "platform_stats": "pipeline counters, too hot for the event log",
    "pipeline_usage": "pipeline counters, too hot for the event log",
    "pipeline_messages": "what the pipeline did per inbound message (dedup)",
    "pipeline_presets": "presets users switched to with a bot command",
    "plugin_blobs": "uploaded plugin archives by sha256 (content-addressed bytes the events name)",
}
TABLES = read_tables(PROJECTIONS)


async def database_tables(conn: asyncpg.Connection) -> set[str]:
    return {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


async def snapshot(dsn: str) -> dict[str, list[dict[str, Any]]]:
    """Every table of the database but the log's own, every column, ordered by its primary key (by all
    columns when it has none). Taken from the database, not the code, so an undeclared table is compared too."""
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for table in sorted(await database_tables(conn) - set(NOT_READ_TABLES)):
            columns, key = await table_columns(conn, "public", table)
            order = ", ".join(f'"{c}"' for c in (key or columns))
            out[table] = [dict(r) for r in await conn.fetch(f'SELECT * FROM "{table}" ORDER BY {order}')]
        return out
    finally:
        await conn.close()


def chatbus(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHATBUS_DATABASE_URL": stack.dsn, "CHATBUS_NATS_URL": stack.nats_url}
    return subprocess.run(
        [sys.executable, "-m", "chatbus", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_every_table_written_by_a_projection_is_declared() -> None:
    """The SQL of each projection module names only the tables its Projection declares."""
    write = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([a-z_]+)", re.IGNORECASE)
    for projection in PROJECTIONS:
        module = inspect.getmodule(next(iter(projection.handlers.values())))
        assert module is not None
        written = set(write.findall(inspect.getsource(module))) - {"SET"}
        assert written, f"no SQL found for projection {projection.name}"
        assert written <= set(projection.tables), (projection.name, written - set(projection.tables))


async def test_every_table_in_the_database_is_a_read_table_or_known(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.dsn)
    try:
        names = await database_tables(conn)
    finally:
        await conn.close()
    assert names - set(NOT_READ_TABLES) == set(TABLES)
    assert len(TABLES) == 18


async def fill_every_read_table(stack: Stack, fake: FakeProvider) -> None:
    c = await stack.admin()
    # presets
    for i in range(3):
        r = await c.post("/api/presets", json={"id": f"all-{i}", "name": f"n{i}", "modelParams": {"temperature": 0.3}})
        assert r.status_code == 201, r.text
    assert (await c.put("/api/presets/all-1", json={"systemPrompt": "changed"})).status_code == 200
    assert (await c.delete("/api/presets/all-2")).status_code == 200
    assert (await c.post("/api/presets/all-0/set-default")).status_code == 200
    # config, with a rollback
    assert (await c.put("/api/config", json={"basic": {"debug": True}})).status_code == 200
    assert (await c.put("/api/config", json={"context": {"maxMessages": 40}})).status_code == 200
    assert (await c.post("/api/config/rollback", json={"version": 2})).status_code == 200
    # group admin
    assert (await c.put("/api/group-admin/g-1/config", json={"model": "m-1"})).status_code == 200
    assert (await c.put("/api/group-admin/g-2/config", json={"enabled": False})).status_code == 200
    assert (await c.delete("/api/group-admin/g-2/config")).status_code == 200
    # channels, and a chat turn whose first channel fails: health, stats of both, a conversation
    await add_channel(c, fake, "first", priority=1)
    await add_channel(c, fake, "second", priority=2)
    await add_channel(c, fake, "spare", priority=3)
    assert (await c.put("/api/channels/spare", json={"weight": 7})).status_code == 200
    fake.script(status(500), reply("Hello!", usage=(5, 2)))
    r = await c.post("/api/chat", json={"message": "hi"})
    assert r.status_code == 200, r.text
    conversation = r.json()["data"]["conversationId"]
    fake.script(reply("Again.", usage=(7, 1)))
    r = await c.post("/api/chat", json={"message": "again", "conversationId": conversation})
    assert r.status_code == 200, r.text
    assert (await c.post(f"/api/conversations/{conversation}/clear")).status_code == 200
    # tools: a toggle, a category toggle, a dangerous flag and a logged call
    assert (await c.post("/api/tools/roll_dice/toggle", json={"enabled": False})).status_code == 200
    assert (await c.put("/api/tools/category/basic/toggle", json={"enabled": True})).status_code == 200
    r = await c.post("/api/tools/dangerous/toggle", json={"toolName": "calculate", "isDangerous": False})
    assert r.status_code == 200, r.text
    r = await c.post("/api/tools/call", json={"name": "calculate", "args": {"expression": "6*7"}})
    assert r.status_code == 200, r.text
    # MCP servers: added (a sealed header), updated, and one added then removed
    for name in ("kept", "gone"):
        body = {"name": name, "url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "k-123456789"}, "enabled": False}
        assert (await c.post("/api/mcp/servers", json=body)).status_code == 201
    assert (await c.put("/api/mcp/servers/kept", json={"timeout": 5})).status_code == 200
    assert (await c.delete("/api/mcp/servers/gone")).status_code == 200
    # platforms
    body = {"id": "qq-1", "type": "onebot11", "config": {"accessToken": "t-123456789", "selfId": "10001"}}
    assert (await c.post("/api/platforms", json=body)).status_code == 201
    # plugins: one installed, configured, enabled and reloaded; a command renamed and one toggled
    r = await upload(c, example_zip())
    assert r.status_code == 201, r.text
    for body in ({"name": "echo-weather", "config": {"unit": "F"}},):
        assert (await c.put("/api/plugins/config", json=body)).status_code == 200
    assert (await c.post("/api/plugins/enable", json={"name": "echo-weather"})).status_code == 200
    assert (await c.post("/api/plugins/reload", json={"name": "echo-weather"})).status_code == 200
    body = {"handler_full_name": "echo-weather.echo", "new_name": "say"}
    assert (await c.post("/api/commands/rename", json=body)).status_code == 200
    body = {"handler_full_name": "builtin.帮助", "enabled": False}
    assert (await c.post("/api/commands/toggle", json=body)).status_code == 200
    # auth: a login link, a revoked token and failed logins
    assert (await c.post("/api/auth/links", json={"permanent": True})).status_code == 201
    assert (await stack.client(token=await stack.login()).post("/api/logout")).status_code == 200
    for _ in range(2):
        await stack.client().post("/api/login", json={"username": "admin", "password": "wrong"})


async def test_replay_rebuilds_every_read_table_equal(stack: Stack) -> None:
    async with FakeProvider("openai") as fake:
        await fill_every_read_table(stack, fake)
    live = await snapshot(stack.dsn)
    assert sorted(live) == sorted(TABLES)
    empty = [t for t, rows in live.items() if not rows]
    assert empty == [], f"read tables without data: {empty}"
    stats = {(r["channel_id"], r["calls"], r["success"], r["failed"]) for r in live["channel_stats"]}
    # The second turn goes to `first` again: one failure is not enough to skip it.
    assert {("first", 2, 1, 1), ("second", 1, 1, 0)} <= stats, stats

    out = chatbus(stack, "replay", "--check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(TABLES)} read tables" in out.stdout, out.stdout

    out = chatbus(stack, "replay")
    assert out.returncode == 0, out.stderr
    rebuilt = await snapshot(stack.dsn)
    for table in live:  # table by table, so a failure names it
        assert rebuilt[table] == live[table], table
