"""Every MCP server of one process: `apply(configs)` keeps one owner task per enabled server, the
tool view names MCP tools `<server>__<tool>`, and `call` runs one with the server's timeout."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from schemas.mcp import McpCallResult, McpServerConfig, McpServerState, McpToolInfo, sanitize_name
from services.tools.mcp.allowlist import AllowList, check_stdio, load_allow_list

if TYPE_CHECKING:  # the `mcp` SDK (pydantic, starlette, httpx, ~35 MiB): loaded with the first server
    from services.tools.mcp.session import McpConnection

log = logging.getLogger("chatbus.mcp")

MAX_NAME = 64
SEPARATOR = "__"


def qualified_names(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(server, tool) -> `<server>__<tool>` in `[A-Za-z0-9_-]`, at most 64 characters, unique.

    A name that is too long, or that two pairs share after sanitising, ends in a hash of its
    (server, tool) instead, so it stays the same however many other servers there are."""
    pairs = sorted(set(pairs))
    base = {p: sanitize_name(f"{p[0]}{SEPARATOR}{p[1]}") for p in pairs}
    seen: dict[str, int] = {}
    for name in base.values():
        seen[name] = seen.get(name, 0) + 1
    out: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for p in pairs:
        name = base[p]
        if seen[name] > 1 or len(name) > MAX_NAME:
            digest = hashlib.sha256(f"{p[0]}\0{p[1]}".encode()).hexdigest()
            name = f"{name[: MAX_NAME - 9]}_{digest[:8]}"
            n = 8
            while name in taken and n < 40:  # a hash prefix clash: lengthen the hash
                n += 4
                name = f"{base[p][: MAX_NAME - n - 1]}_{digest[:n]}"
        taken.add(name)
        out[p] = name
    return out


class McpManager:
    """Owner tasks for the MCP servers of this process.

    `on_change(state)` is called (synchronously, from the owner task) whenever a server's status,
    error or lists change: the place to publish status events. `data_directory` and `environ` are
    where the stdio allow-list is read from (defaults: `CHATBUS_DATA_DIR`, `os.environ`)."""

    def __init__(
        self,
        *,
        on_change: Callable[[McpServerState], None] | None = None,
        data_directory: str | None = None,
        environ: Mapping[str, str] | None = None,
        ping_interval: float = 10.0,
        connect_timeout: float = 30.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        errlog: TextIO | None = None,
    ) -> None:
        self._on_change = on_change
        self._data_directory = data_directory
        self._environ = environ
        self._options: dict[str, Any] = {
            "ping_interval": ping_interval,
            "connect_timeout": connect_timeout,
            "backoff_base": backoff_base,
            "backoff_max": backoff_max,
            "errlog": errlog,
        }
        self._configs: dict[str, McpServerConfig] = {}
        self._conns: dict[str, McpConnection] = {}
        self._held: set[str] = set()  # disconnected by hand: not started again until connect()
        self._index: dict[str, tuple[str, str]] = {}
        self._names: dict[tuple[str, str], str] = {}
        # apply/connect/disconnect/close each await owners stopping: one at a time, or two could
        # interleave and leave an owner running for a server the other just removed.
        self._lock = asyncio.Lock()

    # ---- the stdio allow-list ----------------------------------------------------------------

    def allow_list(self) -> AllowList:
        return load_allow_list(self._environ, self._data_directory)

    def check(self, config: McpServerConfig) -> str | None:
        """Why this config may not run (None: it may). Use it to refuse a create/update with 400."""
        if config.type != "stdio" or config.command is None:
            return None
        return check_stdio(
            config.command,
            config.args,
            env=config.env,
            cwd=config.cwd,
            allow=self.allow_list(),
            data_directory=self._data_directory,
        )

    # ---- lifecycle -----------------------------------------------------------------------------

    async def apply(self, configs: Iterable[McpServerConfig]) -> None:
        """Make the running owners match the desired configs (idempotent): stop removed, disabled or
        changed ones, start new or changed enabled ones."""
        async with self._lock:
            await self._apply({c.name: c for c in configs})

    async def put(self, config: McpServerConfig) -> None:
        """Add or replace one server (a no-op when unchanged)."""
        async with self._lock:
            await self._apply({**self._configs, config.name: config})

    async def remove(self, name: str) -> None:
        async with self._lock:
            await self._apply({n: c for n, c in self._configs.items() if n != name})

    async def _apply(self, desired: dict[str, McpServerConfig]) -> None:
        for name in list(self._configs):
            if name not in desired:
                await self._stop(name)
                self._configs.pop(name, None)
                self._held.discard(name)
                self._reindex()
        for name, config in desired.items():
            old = self._configs.get(name)
            self._configs[name] = config
            if old is not None and old != config:
                self._held.discard(name)
                await self._stop(name)
            if config.enabled and name not in self._held:
                self._start(name)
            else:
                await self._stop(name)
        self._reindex()

    async def connect(self, name: str) -> bool:
        """Start a server (even one disconnected by hand); False when it is not configured."""
        async with self._lock:
            if name not in self._configs:
                return False
            self._held.discard(name)
            conn = self._conns.get(name)
            if conn is not None and conn.running:
                conn.reconnect_now()
            else:
                self._start(name)
            return True

    reconnect = connect

    async def disconnect(self, name: str) -> bool:
        """Stop a server until `connect(name)` or a changed config; False when it is not configured."""
        async with self._lock:
            if name not in self._configs:
                return False
            self._held.add(name)
            await self._stop(name)
            return True

    async def close(self) -> None:
        async with self._lock:
            for name in list(self._conns):
                await self._stop(name)

    def _start(self, name: str) -> None:
        conn = self._conns.get(name)
        if conn is None or conn.config != self._configs[name]:
            from services.tools.mcp.session import McpConnection

            conn = McpConnection(self._configs[name], on_change=self._changed, refusal=self.check, **self._options)
            self._conns[name] = conn
        conn.start()

    async def _stop(self, name: str) -> None:
        conn = self._conns.pop(name, None)
        if conn is not None:
            await conn.stop()
            if self._on_change is not None:
                self._on_change(conn.state)  # `disconnected`, for the status publisher

    def _changed(self, conn: McpConnection) -> None:
        if self._conns.get(conn.config.name) is not conn:
            return  # a stopped owner's last word
        self._reindex()
        if self._on_change is not None:
            self._on_change(conn.state)

    def _reindex(self) -> None:
        pairs = [(name, t.name) for name, conn in self._conns.items() for t in conn.tools]
        self._names = qualified_names(pairs)
        self._index = {q: p for p, q in self._names.items()}

    # ---- reads ---------------------------------------------------------------------------------

    def status(self) -> list[McpServerState]:
        """Every configured server, connected or not, by name."""
        out = []
        for name in sorted(self._configs):
            conn = self._conns.get(name)
            out.append(conn.state if conn is not None else McpServerState(name=name))
        return out

    def state(self, name: str) -> McpServerState | None:
        if name not in self._configs:
            return None
        conn = self._conns.get(name)
        return conn.state if conn is not None else McpServerState(name=name)

    def configs(self) -> list[McpServerConfig]:
        return [self._configs[n] for n in sorted(self._configs)]

    def tools(self, server: str | None = None) -> list[McpToolInfo]:
        out = []
        for name in sorted(self._conns):
            if server is not None and name != server:
                continue
            for tool in self._conns[name].tools:
                qualified = self._names.get((name, tool.name))
                if qualified is None:
                    continue
                out.append(
                    McpToolInfo(
                        name=qualified,
                        server_name=name,
                        tool_name=tool.name,
                        description=tool.description or "",
                        input_schema=dict(tool.input_schema),
                    )
                )
        return out

    def resources(self) -> list[dict[str, Any]]:
        return [
            {"serverName": name, **r.model_dump(mode="json", by_alias=True, exclude_none=True)}
            for name in sorted(self._conns)
            for r in self._conns[name].resources
        ]

    def prompts(self) -> list[dict[str, Any]]:
        return [
            {"serverName": name, **p.model_dump(mode="json", by_alias=True, exclude_none=True)}
            for name in sorted(self._conns)
            for p in self._conns[name].prompts
        ]

    def resolve(self, qualified: str) -> tuple[str, str] | None:
        return self._index.get(qualified)

    async def call(self, qualified: str, arguments: dict[str, Any] | None = None) -> McpCallResult:
        """Run `<server>__<tool>`; every failure is an `is_error` result with a short message."""
        target = self._index.get(qualified)
        if target is None:
            return McpCallResult(text=f"unknown MCP tool {qualified}", is_error=True, duration=0.0)
        server, tool = target
        conn = self._conns.get(server)
        if conn is None:
            return McpCallResult(
                text=f"MCP server {server} is not running", is_error=True, duration=0.0, server_name=server
            )
        return await conn.call(tool, arguments or {})
