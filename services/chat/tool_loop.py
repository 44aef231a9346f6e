"""The tool loop of a chat turn: the model asks for tools, each call goes through `cmd.tools.call`
(any tools worker; the policy is checked there), the results go back to the model, up to
`tools.maxRounds` rounds.

Each call's command id derives from the turn's (round, index, tool name), so a turn retried with the
same Idempotency-Key gets the stored result of a call that already ran instead of running it again.
A tool that fails, is refused or times out becomes an error result the model reads; the turn itself
never fails because of a tool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client as NATS

from bus import subjects
from schemas.channels import Channel
from schemas.chat import SendChat
from schemas.config import Tools as ToolsConfig
from schemas.envelope import CommandEnvelope, CommandReply, command_encoder, reply_decoder
from schemas.llm import ChatMessage, ChatRequest, ToolCall, ToolSpec, Usage
from services.channels.providers.registry import HttpClients
from services.chat.failover import Turn, call_with_failover
from services.worker_reads import WorkerReads

log = logging.getLogger("chatbus.chat.tools")

Publish = Callable[[dict[str, Any]], Awaitable[None]]
LIST_TIMEOUT = 3.0
_encode_text = msgspec.json.Encoder().encode


def _arguments(call: ToolCall) -> dict[str, Any] | None:
    if not call.arguments.strip():
        return {}
    try:
        value = msgspec.json.decode(call.arguments)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _add_usage(total: Usage | None, more: Usage | None) -> Usage | None:
    if more is None:
        return total
    if total is None:
        return more
    return Usage(
        total.prompt_tokens + more.prompt_tokens,
        total.completion_tokens + more.completion_tokens,
        total.total_tokens + more.total_tokens,
    )


class ToolLoop:
    """One turn's tool rounds. `records` is what the stored assistant message keeps."""

    def __init__(
        self,
        nc: NATS,
        settings: ToolsConfig,
        envelope: CommandEnvelope,
        cmd: SendChat,
        preset_id: str | None,
        publish: Publish,
        reads: WorkerReads,
    ) -> None:
        self.nc = nc
        self.settings = settings
        self.envelope = envelope
        self.cmd = cmd
        self.preset_id = preset_id
        self.publish = publish
        self.reads = reads
        self.records: list[dict[str, Any]] = []
        actor = envelope.actor
        self.caller = {"subject": actor.subject if actor else "", "scope": actor.scope if actor else "none"}

    def _call_payload(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "arguments": arguments,
            "caller": self.caller,
            "conversation_id": self.cmd.conversation_id,
            "user_id": self.cmd.user_id,
            "group_id": self.cmd.group_id,
            "preset_id": self.preset_id,
        }

    async def _request(self, action: str, envelope: CommandEnvelope, timeout: float) -> CommandReply:
        async with asyncio.timeout(timeout):
            local = await self.reads.call_local(f"tools.{action}", envelope)
        if local is not None:
            return local
        msg = await self.nc.request(
            subjects.command("tools", action), command_encoder.encode(envelope), timeout=timeout
        )
        return reply_decoder.decode(msg.data)

    async def tool_specs(self) -> list[ToolSpec] | None:
        """The tools this caller may use in this turn; None when tools are off or no tools worker answers."""
        if not self.settings.enabled or self.settings.max_rounds == 0:
            return None
        probe = self.envelope.derive("tools:list", {"usable_by": self._call_payload("", {})})
        try:
            reply = await self._request("list", probe, LIST_TIMEOUT)
        except (nats.errors.NoRespondersError, TimeoutError) as exc:
            log.warning("no tools for this turn: the tools service did not answer (%r)", exc)
            return None
        if not reply.ok:
            return None
        tools = (reply.result or {}).get("tools", [])
        specs = [ToolSpec(t["name"], t.get("description", ""), t.get("inputSchema") or {}) for t in tools]
        return specs or None

    async def run(
        self,
        http: HttpClients,
        request: ChatRequest,
        channels: list[Channel],
        pinned: str | None,
        on_text: Callable[[str], Awaitable[None]] | None,
    ) -> Turn:
        """The turn's last model answer (its usage summed over every round, its text the whole reply)."""
        request = msgspec.structs.replace(request, tools=await self.tool_specs())
        turn = await call_with_failover(http, request, channels, pinned, on_text)
        usage = turn.result.usage if turn.result else None
        text = turn.result.content if turn.result else ""
        for round_number in range(1, self.settings.max_rounds + 2):
            if turn.result is None or not turn.result.tool_calls or not request.tools:
                break
            calls = turn.result.tool_calls
            if round_number > self.settings.max_rounds:
                # Out of rounds: the calls get an error and the model one last say (its calls are ignored).
                # The tools stay declared: Anthropic refuses a history with tool blocks and no tools.
                results: list[str] = [
                    _encode_text({"error": "tool round limit reached; answer without tools"}).decode() for _ in calls
                ]
            else:
                results = list(await asyncio.gather(*(self._run_call(round_number, i, c) for i, c in enumerate(calls))))
            messages = [
                *request.messages,
                ChatMessage(role="assistant", content=turn.result.content, tool_calls=calls),
                *(ChatMessage(role="tool", content=r, tool_call_id=c.id) for c, r in zip(calls, results, strict=True)),
            ]
            request = msgspec.structs.replace(request, messages=messages)
            # The same channel answers the rest of the turn: tool call ids are that provider's.
            stay = turn.channel.id if turn.channel else pinned
            turn = await call_with_failover(http, request, channels, stay, on_text)
            if turn.result is not None:
                usage = _add_usage(usage, turn.result.usage)
                text += turn.result.content
        if turn.result is not None:
            turn.result = msgspec.structs.replace(turn.result, usage=usage, content=text)
        return turn

    async def _run_call(self, round_number: int, index: int, call: ToolCall) -> str:
        """Run one call; the text the model gets back (the result, or an error object)."""
        arguments = _arguments(call)
        await self.publish({"type": "tool_call", "id": call.id, "name": call.name, "arguments": arguments or {}})
        record: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": call.arguments, "round": round_number}
        if arguments is None:
            outcome: dict[str, Any] = {"success": False, "error": "the arguments are not a JSON object", "duration": 0}
        else:
            sub = self.envelope.derive(
                f"tool:{round_number}:{index}:{call.name}", self._call_payload(call.name, arguments)
            )
            outcome = await self._call(sub)
        record.update(outcome)
        self.records.append(record)
        frame = {"type": "tool_result", "id": call.id, "name": call.name, **outcome}
        await self.publish(frame)
        if outcome["success"]:
            return _encode_text(outcome.get("result")).decode()
        return _encode_text({"error": outcome.get("error")}).decode()

    async def _call(self, sub: CommandEnvelope) -> dict[str, Any]:
        timeout = self.settings.timeout_ms / 1000 + 5
        try:
            reply = await self._request("call", sub, timeout)
        except nats.errors.NoRespondersError:
            return {"success": False, "error": "no tools service is running", "duration": 0}
        except TimeoutError:  # nats' own is one too
            return {"success": False, "error": "the tool did not answer in time", "duration": timeout * 1000}
        if not reply.ok:
            message = reply.error.message if reply.error else "refused"
            code = reply.error.code if reply.error else "EXECUTION_ERROR"
            return {"success": False, "error": f"{code}: {message}", "duration": 0}
        result = reply.result or {}
        outcome = {"success": bool(result.get("success")), "duration": result.get("duration", 0)}
        if outcome["success"]:
            outcome["result"] = result.get("result")
        else:
            outcome["error"] = result.get("error") or "the tool failed"
        return outcome
