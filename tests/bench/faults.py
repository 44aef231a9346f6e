"""The fault run (not a test): writes through a real edge while workers and the relay are killed with
SIGKILL again and again; then every failed write is retried with its Idempotency-Key. Prints how many
writes were acknowledged, lost (acknowledged but not stored) and duplicated (stored or published twice).

    python -m tests.bench.faults [--writes 2000] [--concurrency 16] [--kill-every 1.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bus import crypto, nats_conn, subjects
from chatbus.devstack import EmbeddedNats, EmbeddedPostgres, free_port
from chatbus.runtime import bootstrap
from tests.procs import kill, wait_for_responders

HOST = "127.0.0.1"
PASSWORD = "fault-run-password"


def spawn(role: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "chatbus", *role], env=env)


async def run(writes: int, concurrency: int, kill_every: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="chatbus-faults-"))
    nats_server = EmbeddedNats(work / "nats")
    pg = EmbeddedPostgres(work / "postgres", durable=True)
    nats_url = nats_server.start()
    dsn = pg.start()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        await bootstrap(dsn, nats_url, "admin", PASSWORD)
        port = free_port()
        env = {
            **os.environ,
            "CHATBUS_NATS_URL": nats_url,
            "CHATBUS_DATABASE_URL": dsn,
            "CHATBUS_LOG_LEVEL": "ERROR",
            "CHATBUS_SECRET_KEY": crypto.encode_key(crypto.new_key()),
            "CHATBUS_COMMAND_TIMEOUT": "3",
        }
        procs["edge"] = spawn(["edge", "--host", HOST, "--port", str(port)], env)
        procs["worker-1"] = spawn(["worker"], env)
        procs["worker-2"] = spawn(["worker"], env)
        procs["relay"] = spawn(["relay"], env)
        nc = await nats_conn.connect(nats_url, name="faults")
        await wait_for_responders(nc, subjects.command("presets", "create"))
        base = f"http://{HOST}:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as anon:
            for _ in range(100):
                try:
                    if (await anon.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            login = await anon.post("/api/auth/login", json={"password": PASSWORD})
            token = login.json()["data"]["token"]
        await _set_rate_limit_off(dsn, nc)

        kills = {"worker": 0, "relay": 0}
        stop = asyncio.Event()

        async def killer() -> None:
            while not stop.is_set():
                await asyncio.sleep(kill_every)
                role = random.choice(["worker-1", "worker-2", "worker-1", "worker-2", "relay"])
                kill(procs[role])
                kills["relay" if role == "relay" else "worker"] += 1
                procs[role] = spawn(["relay"] if role == "relay" else ["worker"], env)

        keys = [f"fault-{i:05d}" for i in range(writes)]
        first: dict[str, int] = {}
        queue: asyncio.Queue[str] = asyncio.Queue()
        for k in keys:
            queue.put_nowait(k)
        headers = {"Authorization": f"Bearer {token}"}

        async def writer(client: httpx.AsyncClient) -> None:
            while not queue.empty():
                key = queue.get_nowait()
                try:
                    r = await client.post(
                        "/api/presets", json={"id": key, "name": key}, headers={**headers, "Idempotency-Key": key}
                    )
                    first[key] = r.status_code
                except httpx.HTTPError:
                    first[key] = 0

        started = time.monotonic()
        killing = asyncio.create_task(killer())
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await asyncio.gather(*(writer(client) for _ in range(concurrency)))
            stop.set()
            await killing
            elapsed = time.monotonic() - started
            for role in ("worker-1", "worker-2"):
                if procs[role].poll() is not None:
                    procs[role] = spawn(["worker"], env)
            await wait_for_responders(nc, subjects.command("presets", "create"))
            acknowledged = {k for k, s in first.items() if s == 201}
            retried_ok = 0
            for key in sorted(set(keys) - acknowledged):
                for _ in range(20):
                    r = await client.post(
                        "/api/presets", json={"id": key, "name": key}, headers={**headers, "Idempotency-Key": key}
                    )
                    if r.status_code == 201:
                        retried_ok += 1
                        break
                    await asyncio.sleep(0.5)
        # Let the relay catch up, then count what the log and JetStream hold.
        conn = await asyncpg.connect(dsn)
        try:
            stored = {
                r["stream_id"]
                for r in await conn.fetch("SELECT stream_id FROM events WHERE event_type = 'PresetCreated'")
            }
            created_events = await conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'PresetCreated'")
            total_events = await conn.fetchval("SELECT count(*) FROM events")
        finally:
            await conn.close()
        js = nc.jetstream()
        published = 0
        for _ in range(100):
            published = (await js.stream_info(subjects.EVENTS_STREAM)).state.messages
            if published >= total_events:
                break
            await asyncio.sleep(0.2)
        await nc.close()
        lost = sorted(k for k in acknowledged if f"preset-{k}" not in stored)
        user_created = created_events - 2  # the two system presets
        return {
            "writes": writes,
            "concurrency": concurrency,
            "seconds": round(elapsed, 1),
            "kills": kills,
            "acknowledged_first_try": len(acknowledged),
            "failed_first_try": writes - len(acknowledged),
            "first_try_statuses": {
                str(s): sum(1 for v in first.values() if v == s) for s in sorted(set(first.values()))
            },
            "retried_ok": retried_ok,
            "lost": len(lost),
            "duplicated_in_log": user_created - len({k for k in keys if f"preset-{k}" in stored}),
            "events_in_log": total_events,
            "events_on_jetstream": published,
            "duplicated_on_jetstream": max(0, published - total_events),
        }
    finally:
        for proc in procs.values():
            kill(proc)
        pg.stop()
        nats_server.stop()


async def _set_rate_limit_off(dsn: str, nc: Any) -> None:
    from bus import db
    from services.config.handlers import set_config
    from services.registry import make_store

    pool = await db.create_pool(dsn, max_size=2)
    try:
        await set_config(make_store(pool), {"rateLimit": {"requestsPerMinute": 0}})
    finally:
        await pool.close()
    await asyncio.sleep(1.5)  # config reaches the edge through the relayed event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kill-every", type=float, default=1.5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.writes, args.concurrency, args.kill_every)), indent=2))


if __name__ == "__main__":
    main()
