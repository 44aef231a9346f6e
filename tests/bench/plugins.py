"""Plugin commands: round trip (a `#weather` message from the fake NapCat to the plugin's reply),
plugin cold start (enable -> running) and the reload gap (the slowest reply while a reload runs).

    python -m tests.bench.plugins [--messages N]

Everything runs in this one process (embedded NATS and Postgres, one edge, one worker, the relay, the
bot); the plugin is the example `echo-weather`, a real child process. Printed, not asserted."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

import httpx

from tests.bench.inproc import in_process_stack, onebot_bot
from tests.bench.onebot import Timed
from tests.fakes.plugins import example_zip, upload
from tests.stack import Stack


def _percentiles(latencies: list[float]) -> dict[str, float]:
    latencies = sorted(latencies)
    return {
        "count": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
    }


async def _round_trip(bot: Timed, user: int) -> float:
    sent = time.perf_counter()
    await bot.private(str(user), f"#weather c{uuid.uuid4().hex[:6]}")
    while True:
        who, at = await asyncio.wait_for(bot.replies.get(), 30)
        if who == user:
            return at - sent


async def _running(c: httpx.AsyncClient, revision: int | None = None) -> None:
    for _ in range(600):  # bounded: 60 s
        p = (await c.get("/api/plugins/list")).json()["data"]["echo-weather"]
        if p["status"] == "running" and p["tools"]:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the plugin did not start")


async def measure(stack: Stack, messages: int) -> dict[str, Any]:
    c = await stack.admin()
    assert (await upload(c, example_zip())).status_code == 201
    started = time.perf_counter()
    assert (await c.post("/api/plugins/enable", json={"name": "echo-weather"})).status_code == 200
    await _running(c)
    cold_start = time.perf_counter() - started
    async with onebot_bot(stack, c) as bot:
        for _ in range(10):  # warm-up
            await _round_trip(bot, 300_001)
        trips = [await _round_trip(bot, 300_001) for _ in range(messages)]
        # The reload gap: replies keep coming while the plugin is replaced; the slowest one is the gap.
        reload = asyncio.create_task(c.post("/api/plugins/reload", json={"name": "echo-weather"}))
        during = []
        until = time.perf_counter() + 3.0
        while time.perf_counter() < until:
            during.append(await _round_trip(bot, 300_002))
        await reload
    return {
        "round_trip": _percentiles(trips),
        "cold_start_ms": round(cold_start * 1000, 1),
        "during_reload": _percentiles(during),
    }


async def main(messages: int) -> dict[str, Any]:
    async with in_process_stack() as stack:
        return await measure(stack, messages)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.messages)), indent=2))
