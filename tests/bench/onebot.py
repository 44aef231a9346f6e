"""OneBot pipeline throughput: messages from a fake NapCat to replies received, with the fake LLM
instant, at 1 and N concurrent conversations (issue 13: >= 0.8x the chat-turn rate).

    python -m tests.bench.onebot [--duration S] [--concurrency N]   # in process (tests.bench.inproc)
    python -m tests.bench.onebot --loadgen < spec.json              # the load of `tests.bench.run`

`tests.bench.run` runs the load side (`--loadgen`) in a process of its own against the edge's
`/onebot/v11/ws`, with the load generator's protocol (`measure-start`, `measure-end`, a JSON line).
The in-process form runs edge, worker, relay, LLM and bot in this one process: a lower bound."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import websockets

from tests.bench.loadgen import distribution_ms, emit
from tests.fakes.napcat import FakeNapCat

TOKEN = "bench-token-123456"
PLATFORM = "qq"
REPLY_TIMEOUT = 10.0  # a message without a reply by then counts as an error
CONNECT_TIMEOUT = 15.0
MESSAGE_IDS_PER_LEVEL = 10_000_000  # OneBot message ids of one level (int32, as NapCat's): never reused


def platform_body() -> dict[str, Any]:
    """`POST /api/platforms`: the OneBot platform the fake NapCat connects to."""
    return {"id": PLATFORM, "config": {"accessToken": TOKEN}}


class Timed(FakeNapCat):
    """Records when each user's reply arrives."""

    replies: asyncio.Queue[tuple[int, float]]

    @classmethod
    def to(cls, edge_url: str) -> Timed:
        """A bot for the edge at `edge_url` (http://host:port)."""
        bot = cls(edge_url.replace("http://", "ws://") + "/onebot/v11/ws", token=TOKEN)
        bot.replies = asyncio.Queue()
        return bot

    async def _answer(self, frame: dict[str, Any]) -> None:
        await super()._answer(frame)
        if frame["action"] == "send_private_msg":
            await self.replies.put((int(frame["params"]["user_id"]), time.perf_counter()))


@dataclass
class Window:
    start: float = float("inf")
    end: float = float("inf")
    stop: bool = False


async def drive(
    bot: Timed,
    conversations: int,
    window: Window,
    latencies: list[float],
    errors: list[int],
    *,
    first_message_id: int = 1,
    unanswered: dict[int, float] | None = None,
) -> None:
    """`conversations` users, each sending its next message when the reply to the last one arrives, until
    `window.stop`; replies received inside the window are recorded, and a message left without a reply
    for REPLY_TIMEOUT inside it is an error. `unanswered` (user -> sent) holds the messages in flight.

    chatbus drops a message whose id it has seen (the pipeline's dedup): every load process of a run
    needs ids of its own (`first_message_id`), or its messages vanish and its conversations stall."""
    waiting: dict[int, asyncio.Future[float]] = {}
    ids = itertools.count(first_message_id)
    inflight = unanswered if unanswered is not None else {}

    async def route() -> None:
        while True:
            user, at = await bot.replies.get()
            future = waiting.pop(user, None)
            if future is not None and not future.done():
                future.set_result(at)

    async def conversation(user: int) -> None:
        while not window.stop:
            future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            waiting[user] = future
            sent = time.perf_counter()
            inflight[user] = sent
            await bot.private(str(user), f"hello {uuid.uuid4().hex[:6]}", message_id=next(ids))
            try:
                at = await asyncio.wait_for(future, REPLY_TIMEOUT)
            except TimeoutError:
                waiting.pop(user, None)
                del inflight[user]
                if window.start <= time.perf_counter() <= window.end:
                    errors.append(user)
                continue
            del inflight[user]
            if window.start <= at <= window.end:
                latencies.append(at - sent)

    router = asyncio.create_task(route())
    base = 200_000 + conversations * 1000  # users of one level are new conversations
    try:
        await asyncio.gather(*(conversation(base + i) for i in range(conversations)))
    finally:
        router.cancel()


def summary(conversations: int, latencies: list[float], errors: int, window_s: float) -> dict[str, Any]:
    return {
        "conversations": conversations,
        "replies": len(latencies),
        "errors": errors,
        "window_s": round(window_s, 4),
        "per_second": round(len(latencies) / window_s, 1) if window_s > 0 else 0.0,
        "latency_ms": distribution_ms(latencies),
    }


async def run_level(
    bot: Timed, conversations: int, duration: float, *, warmup: float = 0.0, first_message_id: int = 1
) -> dict[str, Any]:
    window = Window()
    latencies: list[float] = []
    errors: list[int] = []
    task = asyncio.create_task(drive(bot, conversations, window, latencies, errors, first_message_id=first_message_id))
    await asyncio.sleep(warmup)
    window.start = time.perf_counter()
    window.end = window.start + duration
    await asyncio.sleep(duration)
    window.stop = True
    await asyncio.wait_for(task, REPLY_TIMEOUT + 5)
    return summary(conversations, latencies, len(errors), duration)


# -- the load process of tests.bench.run ---------------------------------------------------------


async def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """One level as a load generator: measure-start / measure-end around the window, then the result."""
    bot = Timed.to(spec["edge_url"])
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:  # the edge refuses the bot until it has seen the platform's event
        try:
            await bot.connect()
            break
        except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed, TimeoutError):
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.2)
    window = Window()
    latencies: list[float] = []
    errors: list[int] = []
    unanswered: dict[int, float] = {}
    first_id = spec.get("first_message_id", 1)
    task = asyncio.create_task(
        drive(bot, spec["conversations"], window, latencies, errors, first_message_id=first_id, unanswered=unanswered)
    )
    try:
        await asyncio.sleep(spec["warmup"])
        window.start = time.perf_counter()
        window.end = window.start + spec["duration"]
        cpu0 = time.process_time()
        emit("measure-start")
        await asyncio.sleep(spec["duration"])
        window.stop = True
        cpu = time.process_time() - cpu0
        emit("measure-end")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), spec.get("grace", 5.0))
        # Sent inside the window and still without a reply after the grace period: lost, not slow.
        errors += [u for u, sent in unanswered.items() if window.start <= sent <= window.end]
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await bot.close()
    result = summary(spec["conversations"], latencies, len(errors), spec["duration"])
    result["loadgen_cpu_s"] = round(cpu, 3)
    result["loadgen_cpu_pct"] = round(100 * cpu / spec["duration"], 1)
    return result


def loadgen_main() -> int:
    spec = json.loads(sys.stdin.readline())
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):  # optional: plain asyncio works too
        import uvloop

        runner = uvloop.run
    emit(json.dumps(runner(loadgen(spec))))
    return 0


# -- in process ----------------------------------------------------------------------------------


async def in_process(duration: float, concurrency: int) -> list[dict[str, Any]]:
    from tests.bench.inproc import in_process_stack, onebot_bot
    from tests.fakes.llm import FakeProvider

    async with in_process_stack() as stack, FakeProvider("openai") as llm:
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
        async with onebot_bot(stack, c) as bot:
            levels = enumerate(dict.fromkeys((1, concurrency)))
            return [
                await run_level(bot, n, duration, warmup=1.0, first_message_id=MESSAGE_IDS_PER_LEVEL * (i + 1))
                for i, n in levels
            ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.bench.onebot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--loadgen", action="store_true", help="read a spec on stdin: the load of tests.bench.run")
    args = parser.parse_args()
    if args.loadgen:
        raise SystemExit(loadgen_main())
    with contextlib.suppress(KeyboardInterrupt):
        print(json.dumps(asyncio.run(in_process(args.duration, args.concurrency)), indent=2))
