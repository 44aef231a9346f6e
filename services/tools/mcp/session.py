"""One MCP server's session, held by one owner task.

The SDK's transports and `ClientSession` are anyio task groups, whose cancel scopes must be exited by
the task that entered them, so one owner task enters them, initialises, lists tools/resources/prompts,
then watches the session (pings, `list_changed` refreshes) until it dies, and reconnects with
jittered exponential backoff when `autoReconnect`. Tool calls are sent on the live session from the
caller's own task (the SDK's dispatcher correlates responses, so that is safe and needs no queue);
a call that finds the connection closed tells the owner, which reconnects at once."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any, TextIO

import anyio
import msgspec
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from schemas.mcp import McpCallResult, McpServerConfig, McpServerState
from schemas.secrets import mask_url
from services.tools.mcp.allowlist import is_python

log = logging.getLogger("chatbus.mcp")

MAX_RESULT_CHARS = 100_000
MAX_PAGES = 50
MAX_TOOLS = 1000  # per server: a model cannot use more, and a hostile server cannot flood the registry
_LIST_CHANGED = (
    types.ToolListChangedNotification,
    types.ResourceListChangedNotification,
    types.PromptListChangedNotification,
)


def short_error(exc: BaseException) -> str:
    """One line, no stack trace; the innermost real error of an ExceptionGroup."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        text = exc.message
    elif isinstance(exc, TimeoutError):
        text = "timed out"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    # Transport errors quote the server URL; one with a `user:pass@` part must not reach status or logs.
    return mask_url((text.splitlines() or [""])[0])[:300]


def render_result(result: types.CallToolResult) -> str:
    """The text a model sees: text blocks joined; other blocks as short placeholders."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            parts.append(f"[{block.type} {block.mime_type}]")
        elif isinstance(block, types.EmbeddedResource):
            res = block.resource
            parts.append(res.text if isinstance(res, types.TextResourceContents) else f"[resource {res.uri}]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource link {block.uri}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    text = "\n".join(parts)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + "\n[truncated]"


class McpConnection:
    """The owner of one server's session. `start()` once; `stop()` ends it and waits."""

    def __init__(
        self,
        config: McpServerConfig,
        *,
        on_change: Callable[[McpConnection], None],
        refusal: Callable[[McpServerConfig], str | None],
        ping_interval: float = 10.0,
        connect_timeout: float = 30.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        errlog: TextIO | None = None,
    ) -> None:
        self.config = config
        self.state = McpServerState(name=config.name)
        self.tools: list[types.Tool] = []
        self.resources: list[types.Resource] = []
        self.prompts: list[types.Prompt] = []
        self._on_change = on_change
        self._refusal = refusal
        self._ping_interval = ping_interval
        self._connect_timeout = connect_timeout
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._errlog = errlog
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._scope: anyio.CancelScope | None = None
        self._wake = anyio.Event()
        self._dead = False
        self._refresh = False
        self._probe = False
        self._retry_now = False

    # ---- control, from any task --------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mcp:{self.config.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        if self._scope is not None:
            self._scope.cancel()  # the owner unwinds its own cancel scopes
        else:
            task.cancel()  # not started yet: nothing entered
        await asyncio.wait([task])
        self._session = None
        self.tools, self.resources, self.prompts = [], [], []
        self._set(status="disconnected", error=None, connected_at=None, counts=True)

    def reconnect_now(self) -> None:
        """Drop the live session (if any) and connect again without waiting for the backoff."""
        self._retry_now = True
        self._poke()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def call(self, tool: str, arguments: dict[str, Any]) -> McpCallResult:
        started = time.perf_counter()
        session = self._session
        timeout = self.config.timeout

        def done(text: str, is_error: bool) -> McpCallResult:
            ms = round((time.perf_counter() - started) * 1000, 3)
            return McpCallResult(
                text=text, is_error=is_error, duration=ms, server_name=self.config.name, tool_name=tool
            )

        if session is None or self.state.status != "connected":
            return done(f"MCP server {self.config.name} is not connected", True)
        try:
            # The SDK's read timeout answers first; the outer bound only guards against a stuck transport.
            with anyio.fail_after(timeout + 5):
                result = await session.call_tool(tool, arguments, read_timeout_seconds=timeout)
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                self._mark_dead()
                return done(f"MCP server {self.config.name} closed the connection", True)
            if "timed out" in exc.message:
                return done(f"MCP tool {tool} timed out after {timeout:g}s", True)
            # A streamable HTTP transport reports a dead server only as a failed request: have the
            # owner ping now rather than at the next interval.
            self._probe_now()
            return done(f"MCP error: {short_error(exc)}", True)
        except TimeoutError:
            self._probe_now()
            return done(f"MCP tool {tool} timed out after {timeout:g}s", True)
        except Exception as exc:  # a transport or validation failure: the model gets text, never a trace
            self._probe_now()
            return done(f"MCP call failed: {short_error(exc)}", True)
        return done(render_result(result), bool(result.is_error))

    # ---- the owner task ----------------------------------------------------------------------

    def _poke(self) -> None:
        self._wake.set()

    def _probe_now(self) -> None:
        self._probe = True
        self._poke()

    def _mark_dead(self) -> None:
        self._dead = True
        self._poke()

    def _set(self, *, counts: bool = False, **changes: Any) -> None:
        """Replace fields of the state (status, error, connected_at) and tell the listener."""
        if counts:
            changes.update(
                tools_count=len(self.tools), resources_count=len(self.resources), prompts_count=len(self.prompts)
            )
        self.state = msgspec.structs.replace(self.state, **changes)
        try:
            self._on_change(self)
        except Exception:  # a listener must not kill the owner
            log.exception("MCP on_change listener failed")

    async def _run(self) -> None:
        with anyio.CancelScope() as scope:
            self._scope = scope
            attempt = 0
            while True:
                refused = self._refusal(self.config)
                if refused:
                    self._set(status="error", error=refused)
                    return
                self._set(status="connecting", error=None, connected_at=None, counts=True)
                connected = False
                started = time.monotonic()
                try:
                    connected = await self._session_once()
                    error = "connection closed"
                except Exception as exc:
                    error = short_error(exc)
                # The backoff starts over only after a session that lasted: a server that dies right
                # after each handshake is retried ever more slowly, not several times a second.
                lasted = connected and time.monotonic() - started > self._backoff_max
                attempt = 1 if lasted else attempt + 1
                self._session = None
                self.tools, self.resources, self.prompts = [], [], []
                if self._retry_now and connected:  # a reconnect asked for by hand is no failure
                    continue
                self._set(status="error", error=error, connected_at=None, counts=True)
                if self._retry_now:
                    continue
                if not self.config.auto_reconnect:
                    await self._wait_for_retry(None)
                    attempt = 0
                    continue
                await self._wait_for_retry(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        # Jittered (half to full delay): many workers reconnecting to one server do not stampede it.
        ceiling = min(self._backoff_max, self._backoff_base * 2 ** max(0, attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def _wait_for_retry(self, delay: float | None) -> None:
        with anyio.move_on_after(delay if delay is not None else float("inf")):
            while not self._retry_now:
                self._wake = anyio.Event()
                await self._wake.wait()

    async def _open_transport(self, stack: AsyncExitStack) -> tuple[Any, Any]:
        c = self.config
        if c.type == "stdio":
            assert c.command is not None
            # `python` means chatbus's own interpreter (the allow-list's word for any python name).
            command = sys.executable if is_python(c.command) else c.command
            params = StdioServerParameters(command=command, args=list(c.args), env=dict(c.env) or None, cwd=c.cwd)
            return await stack.enter_async_context(stdio_client(params, errlog=self._errlog or sys.stderr))
        assert c.url is not None
        if c.type == "sse":
            return await stack.enter_async_context(
                sse_client(c.url, headers=dict(c.headers) or None, timeout=self._connect_timeout)
            )
        # The transport leaves a client it was given open: this stack closes it with the session.
        http = await stack.enter_async_context(create_mcp_http_client(headers=dict(c.headers) or None))
        read, write = await stack.enter_async_context(streamable_http_client(c.url, http_client=http))
        return read, write

    async def _session_once(self) -> bool:
        """Connect, list, watch; returns (True) when a connected session ends, raises if connecting failed."""
        self._dead = self._refresh = self._probe = self._retry_now = False
        connected = False
        async with AsyncExitStack() as stack:
            read, write = await self._open_transport(stack)
            # The session's read side goes through a forwarder that sees the transport's end of stream
            # (a stdio server that exited, an HTTP stream cut) and wakes the owner at once.
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            to_session, from_transport = anyio.create_memory_object_stream[Any](0)
            tg.start_soon(self._forward, read, to_session)
            session = await stack.enter_async_context(
                ClientSession(from_transport, write, message_handler=self._on_message)
            )
            with anyio.fail_after(self._connect_timeout):
                init = await session.initialize()
                await self._list_all(session, init.capabilities)
            self._session = session
            connected = True
            self._set(status="connected", error=None, connected_at=datetime.now(UTC).isoformat(), counts=True)
            await self._watch(session)
            self._session = None
        return connected

    async def _forward(self, read: Any, out: Any) -> None:
        try:
            async with out:
                async for item in read:
                    await out.send(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        self._mark_dead()

    async def _watch(self, session: ClientSession) -> None:
        while True:
            with anyio.move_on_after(self._ping_interval) as idle:
                await self._wake.wait()
            self._wake = anyio.Event()
            if self._dead or self._retry_now:
                return
            if self._refresh:
                self._refresh = False
                try:
                    with anyio.fail_after(self.config.timeout):
                        await self._list_all(session, session.server_capabilities)
                except Exception as exc:
                    log.warning("MCP %s: refreshing the lists failed: %s", self.config.name, short_error(exc))
                self._set(counts=True)
            if idle.cancelled_caught or self._probe:
                self._probe = False
                try:
                    with anyio.fail_after(min(self.config.timeout, 10.0)):
                        await session.send_ping()
                except Exception:
                    return

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):  # a transport hiccup: find out now whether the session lives
            self._probe = True
        elif isinstance(
            message,
            types.ToolListChangedNotification
            | types.ResourceListChangedNotification
            | types.PromptListChangedNotification,
        ):
            self._refresh = True
        else:
            return
        self._poke()

    async def _list_all(self, session: ClientSession, caps: types.ServerCapabilities | None) -> None:
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor or len(tools) >= MAX_TOOLS:
                break
        self.tools = tools[:MAX_TOOLS]
        self.resources = await self._optional(session.list_resources, "resources") if caps and caps.resources else []
        self.prompts = await self._optional(session.list_prompts, "prompts") if caps and caps.prompts else []

    async def _optional(self, lister: Callable[[], Any], attr: str) -> list[Any]:
        """Resources and prompts are extras: a server that fails to list them still serves tools."""
        try:
            result = await lister()
            return list(getattr(result, attr))
        except Exception as exc:
            log.info("MCP %s: listing %s failed: %s", self.config.name, attr, short_error(exc))
            return []
