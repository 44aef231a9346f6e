"""WebSocket fan-out (issue 13: 1,000 clients receive an event with p99 <= 250 ms).

`measure` starts client processes (`python -m tests.bench.wsfan`, a spec on stdin), each holding its share
of the clients on the edge's `WS /ws` with an admin token, subscribed to `events`. When all are ready it
creates presets over HTTP one at a time, noting when each 2xx arrived; every client notes when the frame
of each preset reached it. Latency = frame received - HTTP 2xx, on the machine's monotonic clock (one
clock for every process). A frame may beat the 2xx (the relay publishes after the commit, as the reply
is sent): such a latency is negative, and counted as it is."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.bench.common import REPO, stop_process
from tests.bench.loadgen import distribution_ms, emit

CONNECT_PARALLEL = 50  # handshakes in flight per client process
SETTLE = 10.0  # seconds the clients wait for the last frames after the last event
EVENT_GAP = 0.25  # seconds between two events: each is measured alone


def raise_fd_limit() -> int:
    """The soft open-files limit raised to the hard one (inherited by processes started afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- the client process --------------------------------------------------------------------------


async def clients(spec: dict[str, Any]) -> dict[str, Any]:
    import websockets

    marker = re.compile(rf"ws-{re.escape(spec['tag'])}-(\d+)")
    received: dict[int, list[float]] = {}
    sockets: list[Any] = []
    failed: dict[str, int] = {}
    gate = asyncio.Semaphore(CONNECT_PARALLEL)
    headers = {"Authorization": f"Bearer {spec['token']}"}

    async def reader(ws: Any) -> None:
        seen: set[int] = set()
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                at = time.monotonic()
                match = marker.search(raw) if isinstance(raw, str) else None
                if match is not None and (i := int(match.group(1))) not in seen:
                    seen.add(i)
                    received.setdefault(i, []).append(at)

    async def connect() -> None:
        async with gate:
            try:
                ws = await websockets.connect(spec["url"], additional_headers=headers, open_timeout=30, max_queue=None)
                await ws.send('{"action":"subscribe","channels":["events"]}')
                while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("type") != "subscribed":
                    pass
            except Exception as exc:
                failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1
                return
            sockets.append(ws)

    await asyncio.gather(*(connect() for _ in range(spec["clients"])))
    tasks = [asyncio.create_task(reader(ws)) for ws in sockets]
    emit(f"ready {len(sockets)}")
    cpu0 = time.process_time()
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    events = int(line.split()[1]) if line.startswith("done") else 0
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline and sum(len(v) for v in received.values()) < events * len(sockets):
        await asyncio.sleep(0.05)
    cpu = time.process_time() - cpu0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"connected": len(sockets), "failed": failed, "received": received, "cpu_s": round(cpu, 3)}


def main() -> int:
    raise_fd_limit()
    spec = json.loads(sys.stdin.readline())
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):  # optional: plain asyncio works too
        import uvloop

        runner = uvloop.run
    emit(json.dumps(runner(clients(spec))))
    return 0


# -- the orchestration (in the bench's process) --------------------------------------------------


def measure(
    url: str, token: str, tag: str, publish: Callable[[int], None], *, clients: int, events: int, processes: int
) -> dict[str, Any]:
    """`publish(i)` creates the event carrying `ws-{tag}-{i}` and returns at its HTTP 2xx."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for p in range(processes):
            share = clients // processes + (1 if p < clients % processes else 0)
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.bench.wsfan"],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({"url": url, "token": token, "tag": tag, "clients": share}).encode() + b"\n")
            proc.stdin.flush()  # not argv: keeps the token out of `ps`
            procs.append(proc)
        connected = 0
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode().strip()  # bounded by the bench's global alarm
            if not line.startswith("ready"):
                raise RuntimeError(f"a WebSocket client process failed before it was ready (exit {proc.poll()})")
            connected += int(line.split()[1])
        answered: dict[int, tuple[float, float]] = {}
        for i in range(events):
            sent = time.monotonic()
            publish(i)
            answered[i] = (sent, time.monotonic())
            time.sleep(EVENT_GAP)
        results = []
        for proc in procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"done {events}\n".encode())
            proc.stdin.close()
            results.append(json.loads(proc.stdout.readline()))
    finally:
        for proc in procs:
            stop_process(proc, "ws clients")
    from_2xx: list[float] = []
    from_request: list[float] = []
    for result in results:
        for i, times in result["received"].items():
            sent, ok = answered[int(i)]
            from_2xx += [t - ok for t in times]
            from_request += [t - sent for t in times]
    failed: dict[str, int] = {}
    for result in results:
        for k, v in result["failed"].items():
            failed[k] = failed.get(k, 0) + v
    expected = clients * events
    return {
        "clients": connected,
        "clients_failed": failed,
        "processes": processes,
        "events": events,
        "expected": expected,
        "received": len(from_2xx),
        "missing": expected - len(from_2xx),
        "latency_ms": distribution_ms(from_2xx),
        "from_request_ms": distribution_ms(from_request),
        "client_cpu_s": [r["cpu_s"] for r in results],
    }


if __name__ == "__main__":
    raise SystemExit(main())
