"""`chatbus replay` rebuilds read tables equal to the live ones."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg

from tests.stack import Stack

TABLES = {
    "presets": "id",
    "users": "username",
    "revoked_tokens": "jti",
    "login_failures": "username, client_ip, failed_at",
}


async def snapshot(dsn: str) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    conn = await asyncpg.connect(dsn)
    try:
        return {
            t: [dict(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY {order}")] for t, order in TABLES.items()
        }
    finally:
        await conn.close()


async def test_replayed_tables_equal_live_ones(stack: Stack) -> None:
    token = await stack.login()
    c = stack.client(token=token)
    for i in range(12):
        await c.post(
            "/api/presets",
            json={"id": f"rp-{i:02d}", "name": f"r{i}", "modelParams": {"temperature": i / 10}},
        )
    for i in range(0, 12, 3):
        await c.put(f"/api/presets/rp-{i:02d}", json={"systemPrompt": f"prompt {i}", "enabled": i % 2 == 0})
    for i in range(1, 12, 4):
        await c.delete(f"/api/presets/rp-{i:02d}")
    await c.post("/api/presets/rp-00/set-default")
    await c.post("/api/presets/rp-03/set-default")
    await c.post("/api/presets/rp-03/copy", json={"newId": "rp-copy"})
    await c.post("/api/presets/import", json=[{"id": "rp-imp", "name": "imported"}])
    await stack.client(token=await stack.login()).post("/api/logout")
    await stack.client().post("/api/login", json={"username": "admin", "password": "wrong"})

    live = await snapshot(stack.dsn)
    assert len(live["presets"]) == 13 and live["revoked_tokens"] and live["login_failures"]
    env = {**os.environ, "CHATBUS_DATABASE_URL": stack.dsn, "CHATBUS_NATS_URL": stack.nats_url}
    out = subprocess.run(
        [sys.executable, "-m", "chatbus", "replay"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "replayed" in out.stdout
    assert await snapshot(stack.dsn) == live

    # The comparison can fail: a drifted read table is not equal.
    conn = await asyncpg.connect(stack.dsn)
    try:
        await conn.execute("UPDATE presets SET name = 'drift' WHERE id = 'rp-00'")
    finally:
        await conn.close()
    assert await snapshot(stack.dsn) != live
