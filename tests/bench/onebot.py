"""OneBot pipeline throughput: messages from a fake NapCat to replies received, with the fake LLM
instant, at 1 and N concurrent conversations (DESIGN.md "Performance": >= 0.8x the chat-turn rate).

    python -m tests.bench.onebot [--duration S] [--concurrency N]

Everything runs in this one process (embedded NATS and Postgres, one edge, one worker, the relay, the
LLM and the bot): a lower bound of what separate processes do, comparable run to run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg

from bus import crypto
from chatbus.runtime import migrate_database
from tests.fakes.llm import FakeProvider
from tests.fakes.napcat import FakeNapCat
from tests.servers import start_servers
from tests.stack import Stack

TOKEN = "bench-token-123456"


class Timed(FakeNapCat):
    """Records when each user's reply arrives."""

    replies: asyncio.Queue[tuple[int, float]]

    async def _answer(self, frame: dict[str, Any]) -> None:
        await super()._answer(frame)
        if frame["action"] == "send_private_msg":
            await self.replies.put((int(frame["params"]["user_id"]), time.perf_counter()))


async def run_level(bot: Timed, conversations: int, duration: float) -> dict[str, Any]:
    waiting: dict[int, asyncio.Future[float]] = {}
    latencies: list[float] = []

    async def route() -> None:
        while True:
            user, at = await bot.replies.get()
            future = waiting.pop(user, None)
            if future is not None and not future.done():
                future.set_result(at)

    async def conversation(user: int, until: float) -> None:
        while time.perf_counter() < until:
            future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            waiting[user] = future
            sent = time.perf_counter()
            await bot.private(str(user), f"hello {uuid.uuid4().hex[:6]}")
            latencies.append((await asyncio.wait_for(future, 30)) - sent)

    router = asyncio.create_task(route())
    start = time.perf_counter()
    base = 200_000 + conversations * 1000
    await asyncio.gather(*(conversation(base + i, start + duration) for i in range(conversations)))
    elapsed = time.perf_counter() - start
    router.cancel()
    latencies.sort()
    return {
        "conversations": conversations,
        "replies": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
    }


async def main(duration: float, concurrency: int) -> list[dict[str, Any]]:
    crypto.install(crypto.load(Path(tempfile.mkdtemp()), create=True))
    with ExitStack() as servers_stack:
        servers = start_servers(servers_stack)
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(servers.pg_admin_dsn)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        dsn = servers.dsn_for(name)
        await migrate_database(dsn)
        stack = Stack(servers.nats_url, dsn)
        await stack.start()
        try:
            async with FakeProvider("openai") as llm:
                c = await stack.admin()
                body = {
                    "id": "llm",
                    "name": "llm",
                    "adapterType": "openai",
                    "baseUrl": llm.base_url,
                    "apiKey": "sk-bench-0000",
                    "models": ["m-1"],
                }
                assert (await c.post("/api/channels", json=body)).status_code == 201
                r = await c.post("/api/platforms", json={"id": "qq", "config": {"accessToken": TOKEN}})
                assert r.status_code == 201, r.text
                bot = Timed(stack.edges[0].url.replace("http://", "ws://") + "/onebot/v11/ws", token=TOKEN)
                bot.replies = asyncio.Queue()
                await bot.connect()
                try:
                    await run_level(bot, 1, 2.0)  # warm-up
                    results = [await run_level(bot, n, duration) for n in (1, concurrency)]
                finally:
                    await bot.close()
        finally:
            await stack.stop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        out = asyncio.run(main(args.duration, args.concurrency))
        print(json.dumps(out, indent=2))
