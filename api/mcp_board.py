"""The edge's view of every tools worker's MCP servers: the snapshots each worker publishes on
`sys.status.tools` (services/tools/mcp/runtime.py), kept per instance, so a read shows
`instances[]` per server and the skills SSE sees each change. A worker that stopped says so (`gone`);
one that died drops out when its snapshots stop (STALE_AFTER, three missed intervals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgspec
from litestar import Request
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from bus import subjects
from services.tools.mcp.runtime import ROLE, STATUS_INTERVAL, StatusMessage

log = logging.getLogger("chatbus.edge")

STALE_AFTER = 3 * STATUS_INTERVAL
FIRST_REPORT_WAIT = 1.0
QUEUE_SIZE = 1000
_RANK = {"connected": 3, "connecting": 2, "error": 1, "disconnected": 0}
_decode = msgspec.json.Decoder(StatusMessage).decode


class McpStatusBoard:
    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self._instances: dict[str, tuple[float, StatusMessage]] = {}
        self._listeners: set[asyncio.Queue[StatusMessage]] = set()
        self._sub: Any = None
        self._first = asyncio.Event()
        self._started = 0.0

    async def start(self) -> None:
        """Subscribe and ask every tools worker for its status now; returns without waiting for them."""
        self._started = time.monotonic()
        self._sub = await self.nc.subscribe(subjects.status(ROLE), cb=self._on_msg)
        await self.nc.flush()
        await self.nc.publish(subjects.status_poll(ROLE), b"")

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def settled(self) -> None:
        """A read right after the edge started should not show every server as unknown: wait (bounded
        from the start) for the first worker's answer; the periodic snapshots fill in the rest."""
        remaining = FIRST_REPORT_WAIT - (time.monotonic() - self._started)
        if self._first.is_set() or remaining <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), remaining)
            await asyncio.sleep(0.1)  # the other workers' answers

    async def _on_msg(self, msg: Msg) -> None:
        try:
            message = _decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if message.gone:
            self._instances.pop(message.instance_id, None)
        else:
            self._instances[message.instance_id] = (time.monotonic(), message)
            self._first.set()
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(message)

    def listen(self) -> asyncio.Queue[StatusMessage]:
        queue: asyncio.Queue[StatusMessage] = asyncio.Queue(QUEUE_SIZE)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[StatusMessage]) -> None:
        self._listeners.discard(queue)

    def live(self) -> list[StatusMessage]:
        now = time.monotonic()
        for instance, (seen, _) in list(self._instances.items()):
            if now - seen > STALE_AFTER:
                self._instances.pop(instance, None)
        return [m for _, m in sorted(self._instances.values(), key=lambda e: e[1].instance_id)]

    def status_of(self, name: str, enabled: bool = True) -> dict[str, Any]:
        """The status fields of one server across every live instance (API.md §8)."""
        instances = []
        states = []
        for message in self.live():
            for state in message.servers:
                if state.name == name:
                    states.append(state)
                    instances.append(
                        {
                            "instanceId": message.instance_id,
                            "status": state.status,
                            "error": state.error,
                            "connectedAt": state.connected_at,
                            "toolsCount": state.tools_count,
                        }
                    )
        best = max(states, key=lambda s: _RANK.get(s.status, 0), default=None)
        status = best.status if best is not None and enabled else "disconnected"
        tools = max((s.tools_count for s in states), default=0)
        return {
            "status": status,
            "toolsCount": tools,
            "toolCount": tools,
            "resourcesCount": max((s.resources_count for s in states), default=0),
            "promptsCount": max((s.prompts_count for s in states), default=0),
            "error": next((s.error for s in states if s.error), None),
            "connectedAt": best.connected_at if best is not None and status == "connected" else None,
            "instances": instances,
        }


BOARD_KEY = "mcp_board"


async def board_of(request: Request[Any, Any, Any]) -> McpStatusBoard:
    """The edge's board (started with the edge, in `api/app.py`)."""
    board: McpStatusBoard = request.app.state[BOARD_KEY]
    await board.settled()
    return board
