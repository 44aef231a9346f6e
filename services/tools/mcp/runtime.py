"""The MCP servers of one tools worker: an `McpManager` kept equal to the `mcp_servers` read table,
offered to the tool registry as the `mcp` source, and its status published per instance.

Convergence: every tools worker reloads the table on `sys.mcp.control` (published by whichever
worker handled an add/update/remove), on every relayed `McpServer*` event, and every
REFRESH_INTERVAL in case both were missed; `apply` is idempotent, so a reload too many is free.
Connect/disconnect/reconnect are per-process actions, so they travel on `sys.mcp.control` as well.

Status: a snapshot of this instance's servers on `sys.status.tools` whenever one changes (with the
changed server, for the skills SSE), every STATUS_INTERVAL, on `sys.status.tools.poll`, and an empty
`gone` one at stop, so an edge can show `instances[]` per server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from bus import subjects
from bus.loops import reload_on_wake, stop_loops
from schemas.mcp import McpServerState
from schemas.tools import ToolSourceKind
from services.tools.mcp import store
from services.tools.mcp.manager import McpManager
from services.tools.registry import CallContext, ToolDef, ToolError

log = logging.getLogger("chatbus.mcp")

STATUS_INTERVAL = 5.0
REFRESH_INTERVAL = 30.0
ROLE = "tools"


ControlAction = Literal["reload", "connect", "disconnect", "reconnect"]


class Control(msgspec.Struct, kw_only=True, omit_defaults=True):
    action: ControlAction
    name: str | None = None


class StatusMessage(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    """One instance's servers; `changed` names the server whose change caused it (SSE frames)."""

    instance_id: str
    servers: list[McpServerState] = []
    changed: McpServerState | None = None
    reloaded: bool = False
    gone: bool = False
    at: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def new_instance_id() -> str:
    return f"tools-{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


class McpRuntime:
    """The `mcp` tool source of one tools worker (a `ToolSource`)."""

    kind: ToolSourceKind = "mcp"

    def __init__(self, pool: Any, nc: NATS, manager: McpManager | None = None) -> None:
        self.pool = pool
        self.nc = nc
        self.instance_id = new_instance_id()
        self.manager = manager or McpManager(on_change=self._changed)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Any] = []
        self._pending: set[asyncio.Future[None]] = set()
        self._stopped = False

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        # Listen first, then load: a change committed in between is seen by the listener.
        self._subs = [
            await self.nc.subscribe(subjects.MCP_CONTROL, cb=self._on_control),
            await self.nc.subscribe(subjects.status_poll(ROLE), cb=self._on_poll),
            await self.nc.subscribe(subjects.event(ROLE, "*"), cb=self._on_event),
        ]
        with contextlib.suppress(Exception):
            await self.reload()
        self._tasks = [
            asyncio.create_task(self._reload_forever(), name="mcp-reload"),
            asyncio.create_task(self._publish_forever(), name="mcp-status"),
        ]

    async def stop(self) -> None:
        self._stopped = True
        await stop_loops(self._tasks, self._subs)
        await self.manager.close()
        with contextlib.suppress(Exception):
            await self._publish(StatusMessage(instance_id=self.instance_id, gone=True, at=_now()))

    async def reload(self) -> None:
        await self.manager.apply(await store.load_configs(self.pool))

    async def _reload_forever(self) -> None:
        await reload_on_wake(self._wake, REFRESH_INTERVAL, self.reload, "the MCP servers")

    async def _publish_forever(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            with contextlib.suppress(Exception):
                await self.publish_status()

    # ---- bus ----------------------------------------------------------------------------------

    async def _on_event(self, msg: Msg) -> None:
        if msg.subject.rsplit(".", 1)[-1].startswith("McpServer"):
            self._wake.set()

    async def _on_poll(self, msg: Msg) -> None:
        await self.publish_status()

    async def _on_control(self, msg: Msg) -> None:
        try:
            control = msgspec.json.decode(msg.data, type=Control)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return
        if control.action == "reload" or control.name is None:
            self._wake.set()
        elif control.action == "disconnect":
            await self.manager.disconnect(control.name)
        else:
            await self.manager.connect(control.name)

    async def publish_status(self, *, changed: McpServerState | None = None, reloaded: bool = False) -> None:
        await self._publish(
            StatusMessage(
                instance_id=self.instance_id,
                servers=self.manager.status(),
                changed=changed,
                reloaded=reloaded,
                at=_now(),
            )
        )

    async def _publish(self, message: StatusMessage) -> None:
        if self.nc.is_connected:
            await self.nc.publish(subjects.status(ROLE), msgspec.json.encode(message))

    def _changed(self, state: McpServerState) -> None:
        if self._stopped:
            return
        future = asyncio.ensure_future(self.publish_status(changed=state))
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    # ---- the tool source ----------------------------------------------------------------------

    def tools(self) -> Sequence[ToolDef]:
        return [
            ToolDef(
                name=t.name,
                description=t.description or f"{t.tool_name} ({t.server_name})",
                input_schema=t.input_schema or {"type": "object", "properties": {}},
                source="mcp",
                category="mcp",
                server_name=t.server_name,
            )
            for t in self.manager.tools()
        ]

    async def call(self, name: str, arguments: dict[str, Any], context: CallContext) -> Any:
        result = await self.manager.call(name, arguments)
        if result.is_error:
            raise ToolError(result.text)
        return result.text


async def broadcast(nc: NATS, action: ControlAction, name: str | None = None) -> None:
    """Tell every tools worker (this one included) to act; flushed, so it is out before the reply."""
    await nc.publish(subjects.MCP_CONTROL, msgspec.json.encode(Control(action=action, name=name)))
    await nc.flush()
