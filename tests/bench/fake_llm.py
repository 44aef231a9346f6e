"""The benchmark's local instant LLM: one `FakeProvider("openai")` in a process of its own, so it is on
neither the load generator's nor the edge's event loop.

    python -m tests.bench.fake_llm --port P [--host 127.0.0.1]

Serves the fake's app (echo the last user message at once; `stream` requests get word tokens as SSE)
under uvloop on the given port until SIGTERM or SIGINT. Its recorded requests are dropped every second:
a benchmark sends hundreds of thousands and never looks at them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from typing import Any

import uvicorn

from tests.fakes.llm import FakeProvider, Protocol


async def forget_requests(fake: FakeProvider) -> None:
    while True:
        await asyncio.sleep(1.0)
        fake.requests.clear()


async def serve(host: str, port: int, protocol: Protocol) -> None:
    fake = FakeProvider(protocol)
    # As FakeProvider.start: proto=IPPROTO_TCP, so the transport gets TCP_NODELAY on every loop.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    fake.port = port
    config = uvicorn.Config(
        fake,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=1,
    )
    janitor = asyncio.create_task(forget_requests(fake))
    try:
        await uvicorn.Server(config).serve(sockets=[sock])  # handles SIGTERM/SIGINT itself
    finally:
        janitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await janitor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.fake_llm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=["openai", "claude", "gemini"], default="openai")
    args = parser.parse_args(argv)
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):  # optional: plain asyncio works too
        import uvloop

        runner = uvloop.run
    runner(serve(args.host, args.port, args.protocol))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
