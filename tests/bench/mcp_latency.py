"""MCP client numbers (printed, never asserted): call latency p50/p95 over stdio, SSE and streamable
HTTP against the fake server, and the time from a server kill to the session being usable again.

Run: `python -m tests.bench.mcp_latency [calls]`."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from schemas.mcp import McpServerConfig
from services.tools.mcp.allowlist import ENV_VAR
from services.tools.mcp.manager import McpManager
from tests.fakes.mcp_harness import ALLOW, HttpServer, stdio_children, stdio_config, wait_until


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _connected(m: McpManager) -> bool:
    state = m.state("srv")
    return state is not None and state.status == "connected"


async def _latency(config: McpServerConfig, calls: int) -> tuple[float, float]:
    m = McpManager(environ={ENV_VAR: ALLOW}, data_directory="/nonexistent-chatbus-bench")
    try:
        await m.apply([config])
        await wait_until(lambda: _connected(m), 30, "connected")
        for _ in range(20):
            await m.call("srv__echo", {"text": "warm"})
        took = []
        for _ in range(calls):
            t0 = time.perf_counter()
            result = await m.call("srv__echo", {"text": "x"})
            took.append((time.perf_counter() - t0) * 1000)
            assert not result.is_error, result.text
        return statistics.median(took), _pct(took, 0.95)
    finally:
        await m.close()


async def _reconnect(kind: str, runs: int, traffic: bool) -> tuple[float, float]:
    """(kill -> not connected, kill/restart -> connected again) medians in ms. For HTTP the server is
    restarted as soon as the kill is seen; its start-up time is subtracted."""
    m = McpManager(
        environ={ENV_VAR: ALLOW},
        data_directory="/nonexistent-chatbus-bench",
        backoff_base=0.1,
        backoff_max=1.0,
    )
    remote = HttpServer(kind, "srv") if kind != "stdio" else None
    detect, back = [], []
    try:
        if remote is not None:
            await remote.start()
        await m.apply([remote.config() if remote else stdio_config("srv")])
        await wait_until(lambda: _connected(m), 30, "connected")
        for _ in range(runs):
            t0 = time.perf_counter()
            if remote is None:
                for child in stdio_children():
                    child.kill()
            else:
                remote.kill()
            if traffic:  # a call soon after the kill, as a busy chat would make
                await m.call("srv__echo", {"text": "x"})
            await wait_until(lambda: not _connected(m), 60, "the kill to be seen")
            detect.append((time.perf_counter() - t0) * 1000)
            startup = 0.0
            if remote is not None:
                s0 = time.perf_counter()
                await remote.start()
                startup = time.perf_counter() - s0
            await wait_until(lambda: _connected(m), 60, "reconnected")
            back.append((time.perf_counter() - t0 - startup) * 1000)
        return statistics.median(detect), statistics.median(back)
    finally:
        await m.close()
        if remote is not None:
            remote.kill()


async def main(calls: int) -> None:
    rows = []
    for kind in ("stdio", "http", "sse"):
        remote = None
        if kind == "stdio":
            config = stdio_config("srv")
        else:
            remote = HttpServer(kind, "srv")
            await remote.start()
            config = remote.config()
        try:
            p50, p95 = await _latency(config, calls)
        finally:
            if remote is not None:
                remote.kill()
        rows.append(f"call latency {kind:5}  p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  ({calls} sequential echo calls)")
    for kind, traffic in (("stdio", False), ("sse", False), ("http", False), ("http", True)):
        detect, back = await _reconnect(kind, 5, traffic)
        label = f"{kind} {'busy' if traffic else 'idle'}"
        rows.append(f"reconnect {label:10}  kill seen after {detect:8.1f} ms  usable again after {back:8.1f} ms")
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
