"""`cmd.tools.mcp_*`: the MCP server configs (events, decided in one transaction each) and the
per-process actions every tools worker carries out (`sys.mcp.control`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from bus.eventstore import EventStore, Handler, error_reply
from bus.worker import CommandFn
from schemas.envelope import CommandEnvelope, CommandReply
from schemas.errors import DomainError
from schemas.mcp import McpServerRef
from services.tools.mcp import store
from services.tools.mcp.runtime import ControlAction, McpRuntime, broadcast


class McpCommands:
    def __init__(self, events: EventStore, runtime: McpRuntime) -> None:
        self.events = events
        self.runtime = runtime

    def handlers(self) -> dict[str, CommandFn]:
        decided = {action: self._decided(h) for action, h in store.handlers(self.runtime.manager.check).items()}
        return {
            **decided,
            "mcp_connect": self._action("connect"),
            "mcp_reconnect": self._action("reconnect"),
            "mcp_disconnect": self._action("disconnect"),
            "mcp_reload": self.reload,
            "mcp_resources": self.resources,
            "mcp_prompts": self.prompts,
        }

    def _decided(self, handler: Handler) -> CommandFn:
        async def run(envelope: CommandEnvelope) -> CommandReply:
            reply = await self.events.execute(envelope, handler)
            if reply.ok:
                await broadcast(self.runtime.nc, "reload")
            return reply

        return run

    def _action(self, action: ControlAction) -> Callable[[CommandEnvelope], Awaitable[CommandReply]]:
        async def run(envelope: CommandEnvelope) -> CommandReply:
            try:
                name = msgspec.convert(envelope.payload, McpServerRef).name
            except msgspec.ValidationError as exc:
                return error_reply(DomainError("INVALID_ARGS", f"bad payload: {exc}"))
            if await store.stored_one(self.events.pool, name) is None:
                return error_reply(DomainError("SERVER_NOT_FOUND", f"MCP server '{name}' not found"))
            await broadcast(self.runtime.nc, action, name)
            status = "disconnected" if action == "disconnect" else "connecting"
            return CommandReply(ok=True, result={"name": name, "action": action, "status": status})

        return run

    async def reload(self, envelope: CommandEnvelope) -> CommandReply:
        await broadcast(self.runtime.nc, "reload")
        await self.runtime.publish_status(reloaded=True)
        return CommandReply(ok=True, result={"reloaded": True})

    async def resources(self, envelope: CommandEnvelope) -> CommandReply:
        return CommandReply(ok=True, result={"resources": self.runtime.manager.resources()})

    async def prompts(self, envelope: CommandEnvelope) -> CommandReply:
        return CommandReply(ok=True, result={"prompts": self.runtime.manager.prompts()})
