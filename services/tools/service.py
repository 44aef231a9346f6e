"""The tools worker's adapter: the registry of this process, `cmd.tools.call` (policy, per-call
timeout, one ToolCalled per command id) and `cmd.tools.list` (the registry view with the settings).

Running a tool is outside work, so it never happens inside a transaction: the stored reply of the
command id is looked up first (a retried call does not run the tool again), the tool runs, and the
record is one short transaction on the call's own stream."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from bus import subjects
from bus.eventstore import EventStore, error_reply
from bus.worker import CommandFn
from schemas.envelope import CommandEnvelope, CommandReply, command_encoder, reply_decoder
from schemas.errors import DomainError
from schemas.presets import PresetTools
from schemas.tools import Caller, CallTool, ListTools, SetAllTools, SetDangerous, ToolInfo
from services.config.cache import ConfigCache
from services.tools import domain, handlers, policy, queries
from services.tools.registry import CallContext, ToolDef, ToolError, ToolRegistry
from services.worker_reads import TOOL_SETTINGS, WorkerReads

log = logging.getLogger("chatbus.tools")

MAX_RESULT_CHARS = 20_000  # what is stored and handed to the model of one result


def tool_info(tool: ToolDef, settings: policy.ToolSettings) -> ToolInfo:
    return ToolInfo(
        name=tool.name,
        description=tool.description,
        input_schema=tool.input_schema,
        source=tool.source,
        server_name=tool.server_name,
        category=tool.category,
        enabled=settings.is_enabled(tool),
        dangerous=settings.is_dangerous(tool),
        permission="admin" if tool.permission == "admin" else "member",
        is_builtin=tool.source == "builtin",
    )


def _bounded(result: Any) -> Any:
    """The result as JSON data, cut to a size the log and the model can take."""
    try:
        data = msgspec.to_builtins(result)
        text = msgspec.json.encode(data)
    except (TypeError, msgspec.EncodeError):
        data = str(result)
        text = data.encode()
    if len(text) > MAX_RESULT_CHARS:
        return text.decode("utf-8", "replace")[:MAX_RESULT_CHARS] + "…[truncated]"
    return data


class ToolService:
    def __init__(
        self, store: EventStore, nc: NATS, config: ConfigCache, registry: ToolRegistry, reads: WorkerReads
    ) -> None:
        self.store = store
        self.nc = nc
        self.config = config
        self.registry = registry
        self.reads = reads

    def handlers(self) -> dict[str, CommandFn]:
        return {
            "call": self.call,
            "list": self.list,
            "set_all": self.set_all,
            "set_dangerous": self.set_dangerous,
        }

    @staticmethod
    def _caller(cmd: CallTool, envelope: CommandEnvelope) -> Caller:
        """Who runs the tool: the payload's caller, else the command's actor, else nobody privileged."""
        if cmd.caller is not None:
            return cmd.caller
        if envelope.actor is not None:
            return Caller(subject=envelope.actor.subject, scope=envelope.actor.scope)
        return Caller()

    async def _context(self, cmd: CallTool) -> tuple[PresetTools | None, dict[str, Any] | None]:
        preset = await self.reads.preset(cmd.preset_id) if cmd.preset_id else None
        group = await self.reads.group(cmd.group_id) if cmd.group_id else None
        overrides = group["overrides"].get("tools") if group else None
        return (preset.tools if preset else None), (overrides if isinstance(overrides, dict) else None)

    async def _settings(self) -> policy.ToolSettings:
        return await self.reads.get(TOOL_SETTINGS, None, queries.settings)

    async def list(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = msgspec.convert(envelope.payload, ListTools)
        except msgspec.ValidationError as exc:
            return error_reply(DomainError("INVALID_ARGS", f"bad payload: {exc}"))
        settings = await self._settings()
        tools = self.registry.tools()
        if cmd.usable_by is not None:
            preset, group = await self._context(cmd.usable_by)
            global_tools = self.config.document.tools
            scope = self._caller(cmd.usable_by, envelope).scope
            tools = [
                t for t in tools if policy.permitted(t, settings, global_tools, preset=preset, group=group, scope=scope)
            ]
        return CommandReply(ok=True, result={"tools": [msgspec.to_builtins(tool_info(t, settings)) for t in tools]})

    async def call(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = msgspec.convert(envelope.payload, CallTool)
        except msgspec.ValidationError as exc:
            return error_reply(DomainError("INVALID_ARGS", f"bad tool call: {exc}"))
        done = await self.store.stored_replies([envelope])
        if envelope.command_id in done:
            return done[envelope.command_id]
        found = self.registry.find(cmd.name)
        if found is None:
            return error_reply(DomainError("TOOL_NOT_FOUND", f"tool '{cmd.name}' not found"))
        tool, source = found
        preset, group = await self._context(cmd)
        settings = await self._settings()
        global_tools = self.config.document.tools
        caller = self._caller(cmd, envelope)
        try:
            policy.check(tool, settings, global_tools, preset=preset, group=group, scope=caller.scope)
        except DomainError as exc:
            return error_reply(exc)
        context = CallContext(caller.subject, caller.scope, cmd.conversation_id, cmd.user_id, cmd.group_id)
        result, error, duration_ms = await self._run(tool, source, cmd.arguments, context, global_tools.timeout_ms)
        reply: dict[str, Any] = {
            "toolName": tool.name,
            "arguments": cmd.arguments,
            "result": result,
            "success": error is None,
            "duration": round(duration_ms, 2),
        }
        if error is not None:
            reply["error"] = error
        event = domain.call_record(
            name=tool.name,
            arguments=cmd.arguments,
            result=result,
            error=error,
            duration_ms=duration_ms,
            source=tool.source,
            caller=caller.subject,
            caller_scope=caller.scope,
            user_id=cmd.user_id,
            group_id=cmd.group_id,
            conversation_id=cmd.conversation_id,
        )
        return await self.store.execute(envelope, handlers.record_call(event, reply))

    async def _run(
        self, tool: ToolDef, source: Any, arguments: dict[str, Any], context: CallContext, timeout_ms: int
    ) -> tuple[Any, str | None, float]:
        """(result, error text, duration): a failing tool is an error text, never an exception."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                result = await source.call(tool.name, arguments, context)
            return _bounded(result), None, (time.monotonic() - started) * 1000
        except TimeoutError:
            error = f"tool '{tool.name}' timed out after {timeout_ms} ms"
        except ToolError as exc:
            error = str(exc)[:2000]
        except Exception as exc:
            # The caller (and the model) get the error's kind and text, the log gets the traceback.
            log.warning("tool %s failed", tool.name, exc_info=True)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        return None, error, (time.monotonic() - started) * 1000

    async def set_all(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = msgspec.convert(envelope.payload, SetAllTools)
        except msgspec.ValidationError as exc:
            return error_reply(DomainError("INVALID_ARGS", f"bad payload: {exc}"))
        names = [t.name for t in self.registry.tools()]
        return await self.store.execute(envelope, handlers.set_all(names, cmd.enabled))

    async def set_dangerous(self, envelope: CommandEnvelope) -> CommandReply:
        """The dangerous flags (this domain's), and the global `allowDangerous` (the config's: a
        sub-command of this one, so a retry with the same key changes nothing twice)."""
        try:
            cmd = msgspec.convert(envelope.payload, SetDangerous)
        except msgspec.ValidationError as exc:
            return error_reply(DomainError("INVALID_ARGS", f"bad payload: {exc}"))
        defaults = {t.name: t.dangerous for t in self.registry.tools()}
        reply = await self.store.execute(envelope, handlers.set_dangerous(defaults))
        allow = self.config.document.tools.allow_dangerous
        if reply.ok and cmd.allow_dangerous is not None and cmd.allow_dangerous != allow:
            patch = {"patch": {"tools": {"allowDangerous": cmd.allow_dangerous}}}
            sub = envelope.derive("config", patch)
            raw = await self.nc.request(subjects.command("config", "update"), command_encoder.encode(sub), timeout=10)
            config_reply = reply_decoder.decode(raw.data)
            if not config_reply.ok:
                return config_reply
            allow = cmd.allow_dangerous
        if reply.ok:
            return CommandReply(
                ok=True, result={**(reply.result or {}), "allowDangerous": allow}, version=reply.version
            )
        return reply
