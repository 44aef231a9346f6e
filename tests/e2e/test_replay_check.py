"""`chatbus replay --check`: rebuilds beside the live read tables, reports every difference, and
changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg

from bus import db
from bus.projections import check
from services.registry import PROJECTIONS
from tests.e2e.test_replay import snapshot
from tests.stack import Stack


def replay_check(stack: Stack, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHATBUS_DATABASE_URL": stack.dsn, "CHATBUS_NATS_URL": stack.nats_url}
    return subprocess.run(
        [sys.executable, "-m", "chatbus", "replay", "--check", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def scratch_schemas(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["nspname"] for r in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'replay%'")]
    finally:
        await conn.close()


async def execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def populate(stack: Stack) -> None:
    c = await stack.admin()
    for i in range(6):
        r = await c.post("/api/presets", json={"id": f"rc-{i}", "name": f"n{i}", "modelParams": {"temperature": 0.5}})
        assert r.status_code == 201, r.text
    await c.put("/api/presets/rc-1", json={"systemPrompt": "changed", "enabled": False})
    await c.delete("/api/presets/rc-2")
    await c.post("/api/presets/rc-3/set-default")
    await stack.client(token=await stack.login()).post("/api/logout")
    for _ in range(2):
        await stack.client().post("/api/login", json={"username": "admin", "password": "wrong"})


async def test_consistent_tables_pass(stack: Stack) -> None:
    await populate(stack)
    live = await snapshot(stack.dsn)
    assert live["revoked_tokens"] and len(live["login_failures"]) == 2

    out = replay_check(stack)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "replay check:" in out.stdout and "equal" in out.stdout
    assert await snapshot(stack.dsn) == live
    assert await scratch_schemas(stack.dsn) == []


async def test_a_corrupted_row_fails_and_is_named(stack: Stack) -> None:
    await populate(stack)
    await execute(stack.dsn, "UPDATE presets SET name = 'drift', enabled = false WHERE id = 'rc-4'")
    corrupted = await snapshot(stack.dsn)

    out = replay_check(stack)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert 'presets [id=rc-4] name: live="drift" rebuilt="n4"' in lines, out.stdout
    assert "presets [id=rc-4] enabled: live=false rebuilt=true" in lines, out.stdout
    assert "1 rows differ" in out.stdout and "presets: 1" in out.stdout
    # --check repairs nothing and leaves nothing behind.
    assert await snapshot(stack.dsn) == corrupted
    assert await scratch_schemas(stack.dsn) == []


async def test_missing_extra_and_keyless_rows(stack: Stack) -> None:
    await populate(stack)
    await execute(
        stack.dsn,
        "DELETE FROM presets WHERE id = 'rc-0'",
        "INSERT INTO presets (id, name, type, created_at, updated_at, version)"
        " VALUES ('ghost', 'Ghost', 'user', now(), now(), 1)",
        # login_failures has no primary key: a duplicated row is a difference too.
        "INSERT INTO login_failures SELECT * FROM login_failures LIMIT 1",
    )
    out = replay_check(stack)
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout
    assert "presets [id=rc-0]: missing from the live table" in text, text
    assert "presets [id=ghost]: only in the live table" in text, text
    assert "login_failures [username=admin, client_ip=" in text and "only in the live table" in text, text
    assert "presets: 2" in text and "login_failures: 1" in text

    # At most N lines of differences.
    limited = replay_check(stack, "--max-diffs", "1")
    assert limited.returncode == 1
    assert len([line for line in limited.stdout.splitlines() if " [" in line]) == 1
    assert "output limited to 1 lines" in limited.stdout
    assert await scratch_schemas(stack.dsn) == []


async def test_check_in_process_reads_one_snapshot(stack: Stack) -> None:
    """The mechanism itself: equal tables give an empty report; the scratch schema is rolled back
    even when the comparison is asked for through the API rather than the CLI."""
    await populate(stack)
    pool = await db.create_pool(stack.dsn, max_size=2)
    try:
        report = await check(pool, PROJECTIONS)
        assert report.equal and report.events > 10
        assert {t.table for t in report.tables} >= {"presets", "users", "revoked_tokens", "login_failures"}
        async with pool.acquire() as conn:
            await conn.execute("UPDATE users SET scope = 'group:9' WHERE username = 'admin'")
        report = await check(pool, PROJECTIONS)
        assert not report.equal
        (diff,) = [d for t in report.tables for d in t.differences]
        assert diff.table == "users" and diff.key == {"username": "admin"} and diff.columns() == ["scope"]
        # The pool's connections still see the live tables (search_path was local to the check).
        assert await pool.fetchval("SELECT scope FROM users WHERE username = 'admin'") == "group:9"
    finally:
        await pool.close()
    assert await scratch_schemas(stack.dsn) == []
