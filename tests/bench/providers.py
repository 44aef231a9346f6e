"""Client-side cost of one provider call: our httpx+msgspec adapter vs the official SDK (when it is
installed), against the local instant fake, in one process, side by side. `python -m tests.bench.providers`.

The fake runs in its own process so that only the client's work shares this loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import httpx

from chatbus.devstack import free_port
from schemas.llm import ChatMessage, ChatRequest, ProviderTarget
from services.channels.providers import openai as openai_adapter


async def timed(n: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(50):  # warm-up: connections, caches
        await call()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t0) * 1e6)
    return samples


async def main(n: int) -> None:
    port = free_port()
    fake = subprocess.Popen([sys.executable, "-m", "tests.bench.fake_llm", "--port", str(port)], start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        async with asyncio.timeout(20):
            while True:
                try:
                    httpx.get(f"{base}/models", timeout=0.5)
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        target = ProviderTarget(adapter_type="openai", base_url=base, api_key="sk-bench")
        request = ChatRequest(model="m-1", messages=[ChatMessage(role="user", content="hi")])
        rows: list[tuple[str, list[float]]] = []
        async with httpx.AsyncClient() as http:

            async def ours() -> object:
                return await openai_adapter.complete(http, target, request)

            async def ours_stream() -> object:
                async for _ in openai_adapter.stream(http, target, request):
                    pass
                return None

            rows.append(("chatbus adapter (httpx+msgspec) complete", await timed(n, ours)))
            rows.append(("chatbus adapter (httpx+msgspec) stream", await timed(n, ours_stream)))
        try:
            from openai import AsyncOpenAI
        except ImportError:
            print("(openai SDK not installed: pip install openai to compare)")
        else:
            client = AsyncOpenAI(base_url=base, api_key="sk-bench", max_retries=0)

            async def sdk() -> object:
                return await client.chat.completions.create(model="m-1", messages=[{"role": "user", "content": "hi"}])

            async def sdk_stream() -> object:
                stream = await client.chat.completions.create(
                    model="m-1", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                async for _ in stream:
                    pass
                return None

            rows.append(("openai SDK complete", await timed(n, sdk)))
            rows.append(("openai SDK stream", await timed(n, sdk_stream)))
            await client.close()
        print(f"{'client':45} {'p50 us':>9} {'p99 us':>9} {'calls/s':>9}")
        for name, s in rows:
            s.sort()
            print(f"{name:45} {s[len(s) // 2]:9.0f} {s[int(len(s) * 0.99)]:9.0f} {1e6 / statistics.mean(s):9.0f}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(fake.pid, signal.SIGTERM)
        fake.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1000, help="calls per client (default 1000)")
    asyncio.run(main(parser.parse_args().n))
