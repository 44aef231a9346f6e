"""A chat turn, orchestrated: three short steps, never one long transaction.

1. store the user message (a sub-command of the turn), 2. call the LLM outside any transaction with
failover across channels, streaming frames on `chat.stream.<id>`, 3. store the reply (another
sub-command). The user message commits while the LLM already works, so the first token never waits
on a commit; a retried turn (same command id) neither repeats the user message nor answers twice.
What the model sees is `context.py`; which channel answers is `failover.py`; channel health after the
turn is the channels domain's (`services/channels/health.py`)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from bus.eventstore import EventStore, error_reply
from bus.worker import CommandFn
from schemas.chat import SendChat
from schemas.envelope import CommandEnvelope, CommandReply, ErrorInfo
from schemas.errors import DomainError
from services.channels.health import record_outcomes
from services.channels.providers.registry import HttpClients
from services.chat import handlers
from services.chat.context import build_request, plan_turn, recent_history
from services.chat.failover import Turn, turn_error
from services.chat.tool_loop import ToolLoop
from services.config.cache import ConfigCache
from services.worker_reads import WorkerReads

log = logging.getLogger("chatbus.chat")

_encode = msgspec.json.Encoder().encode
KEEPALIVE_SECONDS = 2.0


def _usage(turn: Turn) -> dict[str, int]:
    usage = turn.result.usage if turn.result and turn.result.usage else None
    if usage is None:
        return {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0}
    return {
        "promptTokens": usage.prompt_tokens,
        "completionTokens": usage.completion_tokens,
        "totalTokens": usage.total_tokens,
    }


def may_be_retried(envelope: CommandEnvelope) -> bool:
    """Could a step of this turn already be stored? Not when the edge drew its id at random (a uuid4,
    sent without an Idempotency-Key, so no request hash): core NATS delivers a request at most once
    and nothing resends it, so no command can have used that id before. An Idempotency-Key's id or a
    derived one (uuid5: the pipeline's, from the platform message) may come again, and is checked;
    only then are the turn's steps recorded in processed_commands."""
    return envelope.request_hash is not None or envelope.command_id.version != 4


def must_look_up(envelope: CommandEnvelope, cmd: SendChat) -> bool:
    """Whether the turn reads its stored steps before running. A turn that may be retried does,
    unless its sender proved this is its first try (`first_try`: the pipeline's claim of a message's
    first delivery); its steps are recorded all the same, for a redelivery after a crash to find."""
    return may_be_retried(envelope) and not cmd.first_try


async def _nothing_stored() -> dict[uuid.UUID, CommandReply]:
    return {}


class ChatEngine:
    def __init__(self, store: EventStore, nc: NATS, config: ConfigCache, http: HttpClients, reads: WorkerReads) -> None:
        self.store = store
        self.nc = nc
        self.config = config
        self.http = http
        self.reads = reads

    def handlers(self) -> dict[str, CommandFn]:
        return {"send": self.send}

    async def send(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = msgspec.convert(envelope.payload, SendChat)
        except msgspec.ValidationError as exc:
            return error_reply(DomainError("INVALID_ARGS", f"bad chat payload: {exc}"))
        final = envelope.derive("assistant")
        first = envelope.derive("user")
        # Whether a step of this turn is already stored, read while the turn is planned and its
        # history read: one round trip's wait instead of two.
        retriable = may_be_retried(envelope)
        look_up = must_look_up(envelope, cmd)
        stored = asyncio.ensure_future(self.store.stored_replies([final, first]) if look_up else _nothing_stored())
        failure: DomainError | None = None
        try:
            plan = await plan_turn(self.reads, self.config.document, cmd)
            # A conversation the edge just drew has no history (and a wrong claim only costs context).
            history = [] if cmd.new_conversation else await recent_history(self.reads.pool, cmd, plan)
        except DomainError as exc:
            failure = exc
        except BaseException:
            stored.cancel()
            raise
        done = await stored
        if final.command_id in done:
            return done[final.command_id]
        if first.command_id in done and not done[first.command_id].ok:  # the key was used for another turn
            return done[first.command_id]
        if failure is not None:
            await self._publish(cmd, {"type": "error", "code": failure.code, "message": failure.message})
            return error_reply(failure)
        # The history as it was before this turn; the new message goes at its end.
        request = build_request(self.config.document, cmd, plan, history, include_current=first.command_id not in done)
        channels, pinned, preset_id = plan.channels, plan.pinned, plan.preset.id if plan.preset else None
        # The reply is stored only once the message it answers is.
        # A turn that cannot come again records neither step in processed_commands: nothing would
        # ever look them up (the stored_replies above is skipped for it), and each is a write less.
        user_task = asyncio.create_task(self.store.execute(first, handlers.user_message(cmd), record=retriable))
        await self._publish(cmd, {"type": "start", "conversationId": cmd.conversation_id})
        keepalive = asyncio.create_task(self._keepalive(cmd))
        on_text = self._text_sender(cmd) if cmd.stream_subject else None
        tools = ToolLoop(
            self.nc, self.config.document.tools, envelope, cmd, preset_id, self._frame_sender(cmd), self.reads
        )
        try:
            turn = await tools.run(self.http, request, channels, pinned, on_text)
        finally:
            keepalive.cancel()
            user = await user_task
        if not user.ok:
            error = user.error or ErrorInfo("INTERNAL_ERROR", "the message was not stored", 500)
            await self._publish(cmd, {"type": "error", "code": error.code, "message": error.message})
            return user
        used_was_active = turn.channel is not None and turn.channel.status == "active"
        await record_outcomes(self.store, envelope, turn.tried, used_was_active=used_was_active)
        if turn.result is None and not turn.text:
            return await self._fail(cmd, turn_error(turn))
        reply = await self.store.execute(
            final,
            self._reply(cmd, turn, (user.result or {}).get("messageId"), tools.records, user.version),
            record=retriable,
        )
        if turn.result is None:  # broke after the first token: the partial reply is stored, marked failed
            return await self._fail(cmd, turn_error(turn))
        await self._publish(cmd, {"type": "end", **(reply.result or {})})
        return reply

    def _reply(
        self,
        cmd: SendChat,
        turn: Turn,
        reply_to: str | None,
        tool_calls: list[dict[str, Any]],
        after_version: int | None,
    ) -> Any:
        """The stored reply keeps every tool call the turn ran, with its result (or, when no tool
        was offered, the calls the model asked for anyway)."""
        usage = _usage(turn)
        if not tool_calls and turn.result is not None:
            tool_calls = [msgspec.to_builtins(t) for t in turn.result.tool_calls]
        model = turn.result.model if turn.result and turn.result.model else turn.model
        channel_id = turn.channel.id if turn.channel else None
        metadata = {
            "channelId": channel_id,
            "model": model,
            "usage": usage,
            "latencyMs": round(turn.latency_ms, 1),
            "ttftMs": round(turn.ttft_ms, 1) if turn.ttft_ms is not None else None,
            "channelsTried": turn.tried,
            "replyTo": reply_to,
            "status": "ok" if turn.result is not None else "failed",
        }
        content = turn.result.content if turn.result is not None else turn.text
        result = {
            "response": content,
            "conversationId": cmd.conversation_id,
            "model": model,
            "channelId": channel_id,
            "toolCalls": tool_calls,
            "usage": usage,
        }
        return handlers.assistant_message(
            cmd.conversation_id, content, tool_calls, metadata, result, after_version=after_version
        )

    async def _fail(self, cmd: SendChat, failure: DomainError) -> CommandReply:
        await self._publish(cmd, {"type": "error", "code": failure.code, "message": failure.message})
        return error_reply(failure)

    def _frame_sender(self, cmd: SendChat) -> Any:
        async def send_frame(frame: dict[str, Any]) -> None:
            await self._publish(cmd, frame)

        return send_frame

    def _text_sender(self, cmd: SendChat) -> Any:
        async def send_text(text: str) -> None:
            await self._publish(cmd, {"type": "content", "text": text})

        return send_text

    async def _keepalive(self, cmd: SendChat) -> None:
        """While the LLM works, tell the streaming edge the turn is alive: silence means the worker died."""
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            await self._publish(cmd, {"type": "keepalive"})

    async def _publish(self, cmd: SendChat, frame: dict[str, Any]) -> None:
        if cmd.stream_subject and self.nc.is_connected:
            await self.nc.publish(cmd.stream_subject, _encode(frame))
