"""The plugins of one tools worker: each enabled plugin is an MCP stdio server (an `McpConnection`,
the same client as `services/tools/mcp`), started from its digest-addressed copy with a minimal
environment and resource limits, offered to the tool registry as the `plugin` source.

Convergence: every worker reloads the `plugins` table on each relayed `events.plugins.*` and every
REFRESH_INTERVAL. A plugin whose digest, config or revision changed is restarted the safe way round:
the new process is started and awaited (connected or failed) before the old one is stopped, so
commands keep an answer through a reload. A crashing plugin is restarted by its connection with
jittered backoff; its status is `error` with its last error line (never a trace)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from bus import crypto, subjects
from bus.loops import reload_on_wake, stop_loops
from schemas.mcp import McpServerConfig
from schemas.tools import ToolSourceKind
from services.plugins import artifact, queries
from services.tools.registry import CallContext, ToolDef, ToolError, mcp_tool_name

if TYPE_CHECKING:
    from services.tools.mcp.session import McpConnection

log = logging.getLogger("chatbus.plugins")

REFRESH_INTERVAL = 30.0
START_WAIT = 30.0  # how long a reload waits for the new process before it stops the old one anyway
CPU_SECONDS = 3600
ADDRESS_SPACE = 4 * 1024**3
OPEN_FILES = 256
LAUNCHER = Path(__file__).with_name("launcher.py")


def plugins_root() -> Path:
    return Path(os.environ.get("CHATBUS_DATA_DIR", "./.chatbus")).resolve() / "plugins"


def server_config(row: dict[str, Any], folder: Path) -> McpServerConfig:
    """The plugin as an MCP stdio server: chatbus's interpreter runs the launcher, which sets the
    limits and execs the entry; the environment is HOME and the config (the SDK adds only PATH and
    the like, never CHATBUS_* or the database and NATS addresses)."""
    manifest = row["manifest"]
    entry = list(manifest["entry"])
    if entry[0] in ("python", "python3"):
        entry[0] = sys.executable
    limits = ["--cpu", str(CPU_SECONDS), "--as", str(ADDRESS_SPACE), "--nofile", str(OPEN_FILES)]
    return McpServerConfig(
        name=row["name"],
        type="stdio",
        command=sys.executable,
        args=["-I", str(LAUNCHER), *limits, "--", *entry],
        env={
            "HOME": str(folder),
            "CHATBUS_PLUGIN_CONFIG": json.dumps(crypto.open_document(row["config"]), ensure_ascii=False),
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        cwd=str(folder),
        timeout=float(manifest.get("timeout", 30.0)),
    )


@dataclass
class Running:
    key: tuple[str, str, int]  # digest, config, revision
    conn: McpConnection
    changed: asyncio.Event
    last_error: str | None = None


class PluginRuntime:
    kind: ToolSourceKind = "plugin"

    def __init__(self, pool: Any, nc: NATS, root: Path | None = None) -> None:
        self.pool = pool
        self.nc = nc
        self.root = root or plugins_root()
        self.running: dict[str, Running] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Any] = []

    async def start(self) -> None:
        self._subs = [
            await self.nc.subscribe(subjects.event("plugins", "*"), cb=self._on_event),
            await self.nc.subscribe(subjects.PLUGINS_STATUS, cb=self._on_status),
        ]
        self._tasks = [asyncio.create_task(self._reload_forever(), name="plugins-reload")]
        self._wake.set()

    async def stop(self) -> None:
        await stop_loops(self._tasks, self._subs)
        async with self._lock:
            for name in list(self.running):
                await self.running.pop(name).conn.stop()

    async def _on_event(self, msg: Msg) -> None:
        self._wake.set()

    async def _reload_forever(self) -> None:
        await reload_on_wake(self._wake, REFRESH_INTERVAL, self.reload, "the plugins")

    async def reload(self) -> None:
        async with self._lock:
            rows = {r["name"]: r for r in await queries.enabled_plugins(self.pool)}
            for name in [n for n in self.running if n not in rows]:
                await self.running.pop(name).conn.stop()
            for name, row in rows.items():
                key = (row["digest"], json.dumps(row["config"], sort_keys=True), int(row["revision"]))
                old = self.running.get(name)
                if old is not None and old.key == key:
                    continue
                await self._replace(row, key, old)

    async def _replace(self, row: dict[str, Any], key: tuple[str, str, int], old: Running | None) -> None:
        name = row["name"]
        data = await queries.get_blob(self.pool, row["digest"])
        if data is None:
            log.warning("plugin %s: no stored archive %s", name, row["digest"][:12])
            return
        folder = await asyncio.to_thread(artifact.extract, data, self.root, row["digest"])
        changed = asyncio.Event()
        from services.tools.mcp.session import McpConnection  # the `mcp` SDK: only once a plugin runs

        new = Running(
            key,
            McpConnection(
                server_config(row, folder), on_change=self._changed(changed), refusal=lambda _: None, backoff_max=30.0
            ),
            changed,
        )
        new.conn.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_WAIT):
                while new.conn.state.status not in ("connected", "error"):
                    changed.clear()
                    await changed.wait()
        self.running[name] = new  # the new process answers from now on ...
        if old is not None:
            await old.conn.stop()  # ... and only then does the old one go

    def _changed(self, event: asyncio.Event) -> Any:
        def on_change(conn: McpConnection) -> None:
            running = self.running.get(conn.config.name)
            if running is not None and running.conn is conn and conn.state.error:
                running.last_error = conn.state.error
            if conn.state.status == "connected" and running is not None and running.conn is conn:
                running.last_error = None
            event.set()

        return on_change

    # ---- status --------------------------------------------------------------------------------

    def status(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, r in self.running.items():
            state = r.conn.state
            if state.status == "connected":
                status, error = "running", None
            elif state.status == "error" or r.last_error:
                status, error = "error", state.error or r.last_error
            else:
                status, error = "stopped", None
            tools = [mcp_tool_name(name, t.name) for t in r.conn.tools]
            out[name] = {"status": status, "error": error, "tools": tools, "digest": r.key[0], "revision": r.key[2]}
        return out

    async def _on_status(self, msg: Msg) -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, msgspec.json.encode(self.status()))

    # ---- the tool source ---------------------------------------------------------------------

    def tools(self) -> Sequence[ToolDef]:
        out = []
        for name, r in self.running.items():
            for t in r.conn.tools:
                out.append(
                    ToolDef(
                        name=mcp_tool_name(name, t.name),
                        description=t.description or f"{t.name} ({name})",
                        input_schema=dict(t.input_schema) or {"type": "object", "properties": {}},
                        source="plugin",
                        category="plugin",
                        server_name=name,
                    )
                )
        return out

    async def call(self, name: str, arguments: dict[str, Any], context: CallContext) -> Any:
        for plugin, r in self.running.items():
            for t in r.conn.tools:
                if mcp_tool_name(plugin, t.name) == name:
                    result = await r.conn.call(t.name, arguments)
                    if result.is_error:
                        raise ToolError(result.text)
                    return result.text
        raise ToolError(f"plugin tool {name} is not running")
