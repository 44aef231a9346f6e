"""The chat turn, run by the chat workers (`cmd.chat.send`).

A turn is three short steps, never one long transaction: (1) store the user message, (2) call the
LLM outside any transaction, streaming token deltas on `chat.stream.<requestId>` (core NATS, not
events), failing over between channels until the first token, (3) store the assistant message with
what was tried and how it went. Steps 1 and 3 use command ids derived from the turn's own, so a
retried turn (same Idempotency-Key) neither repeats the user message nor answers twice."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from bus.eventstore import Decision, EventStore, StreamAppend, error_reply, event_from_struct
from schemas.channels import Channel
from schemas.chat import (
    ConversationDeleted,
    ConversationRef,
    ConversationStarted,
    MessageAdded,
    SendChat,
    StartConversation,
)
from schemas.envelope import CommandEnvelope, CommandReply
from schemas.errors import DomainError
from schemas.llm import ChatMessage, ChatRequest, ChatResult, StreamDone, TextDelta
from services.channels import queries as channel_queries
from services.channels.handlers import record_health
from services.channels.probe import target_of
from services.channels.providers.base import ProviderError
from services.channels.providers.registry import ADAPTERS, HttpClients
from services.chat import queries
from services.chat.selection import order_channels
from services.config.cache import ConfigCache
from services.group_admin import queries as group_queries
from services.presets import queries as preset_queries

log = logging.getLogger("chatbus.chat")

_encode = msgspec.json.Encoder().encode
CHARS_PER_TOKEN = 4
KEEPALIVE_SECONDS = 2.0  # a rough, provider-neutral budget for trimming context


def conversation_stream(conversation_id: str) -> str:
    return f"conversation-{conversation_id}"


def _derived(envelope: CommandEnvelope, step: str, payload: dict[str, Any]) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=uuid.uuid5(envelope.command_id, step),
        type=f"{envelope.type}:{step}",
        actor=envelope.actor,
        payload=payload,
        request_id=envelope.request_id,
        client_ip=envelope.client_ip,
    )


async def _conversation_version(conn: asyncpg.Connection, stream: str) -> tuple[int, bool]:
    """(version, exists): a conversation exists unless never started or deleted last."""
    row = await conn.fetchrow(
        "SELECT stream_version, event_type FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
        stream,
    )
    if row is None:
        return 0, False
    return row["stream_version"], row["event_type"] != "ConversationDeleted"


@dataclass
class Turn:
    channel: Channel | None
    result: ChatResult | None
    text: str
    tried: list[dict[str, Any]]
    latency_ms: float
    ttft_ms: float | None
    error: ProviderError | None
    model: str


class ChatCommands:
    def __init__(self, store: EventStore, nc: NATS, config: ConfigCache, http: HttpClients) -> None:
        self.store = store
        self.nc = nc
        self.config = config
        self.http = http

    def handlers(self) -> dict[str, Any]:
        return {"send": self.send, "start": self.start, "delete": self.delete, "clear": self.clear}

    # ---- conversation lifecycle ----

    async def start(self, envelope: CommandEnvelope) -> CommandReply:
        async def handler(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
            cmd = msgspec.convert(env.payload, StartConversation)
            stream = conversation_stream(cmd.conversation_id)
            version, exists = await _conversation_version(conn, stream)
            if exists:
                raise DomainError("CONFLICT", f"conversation '{cmd.conversation_id}' exists")
            event = ConversationStarted(conversation_id=cmd.conversation_id, platform=cmd.platform, creator=cmd.creator)
            return Decision(
                [StreamAppend(stream, version, [event_from_struct(event)])],
                result={"conversationId": cmd.conversation_id},
            )

        return await self.store.execute(envelope, handler)

    async def delete(self, envelope: CommandEnvelope) -> CommandReply:
        return await self.store.execute(envelope, self._ref_handler(ConversationDeleted, "deleted"))

    async def clear(self, envelope: CommandEnvelope) -> CommandReply:
        from schemas.chat import ConversationCleared

        return await self.store.execute(envelope, self._ref_handler(ConversationCleared, "cleared"))

    def _ref_handler(self, event_type: type[msgspec.Struct], what: str) -> Any:
        async def handler(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
            cmd = msgspec.convert(env.payload, ConversationRef)
            stream = conversation_stream(cmd.conversation_id)
            version, exists = await _conversation_version(conn, stream)
            if not exists:
                raise DomainError("CONVERSATION_NOT_FOUND", f"conversation '{cmd.conversation_id}' not found")
            event = event_type(conversation_id=cmd.conversation_id)
            return Decision(
                [StreamAppend(stream, version, [event_from_struct(event)])],
                result={"conversationId": cmd.conversation_id, what: True},
            )

        return handler

    # ---- a chat turn ----

    async def send(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = msgspec.convert(envelope.payload, SendChat)
        except msgspec.ValidationError as exc:
            return error_reply(DomainError("INVALID_ARGS", f"bad chat payload: {exc}"))
        final = _derived(envelope, "assistant", {})
        first = _derived(envelope, "user", {})
        async with self.store.pool.acquire() as conn:
            done = {
                r["command_id"]: r["result"]
                for r in await conn.fetch(
                    "SELECT command_id, result FROM processed_commands WHERE command_id = ANY($1::uuid[])",
                    [final.command_id, first.command_id],
                )
            }
        if final.command_id in done:
            return msgspec.convert(done[final.command_id], CommandReply)
        try:
            # The history as it was before this turn; the new message goes at its end.
            request, channels, pinned = await self._prepare(cmd, include_current=first.command_id not in done)
        except DomainError as exc:
            await self._publish(cmd, {"type": "error", "code": exc.code, "message": exc.message})
            return error_reply(exc)
        # The user message is committed while the LLM already works: the first token does not wait on a
        # commit. The reply is stored only once the message it answers is.
        user_task = asyncio.create_task(self.store.execute(first, self._user_message(cmd)))
        await self._publish(cmd, {"type": "start", "conversationId": cmd.conversation_id})
        keepalive = asyncio.create_task(self._keepalive(cmd))
        try:
            turn = await self._call(cmd, request, channels, pinned)
        finally:
            keepalive.cancel()
            user = await user_task
        if not user.ok:
            await self._publish(cmd, {"type": "error", "code": user.error.code, "message": user.error.message})  # type: ignore[union-attr]
            return user
        await self._record_health(envelope, turn)
        if turn.result is None and not turn.text:
            failure = self._turn_error(turn)
            await self._publish(cmd, {"type": "error", "code": failure.code, "message": failure.message})
            return error_reply(failure)
        reply_to = (user.result or {}).get("messageId")
        reply = await self.store.execute(final, self._assistant_message(cmd, turn, reply_to))
        if turn.result is None:  # broke after the first token: the partial reply is stored, marked failed
            failure = self._turn_error(turn)
            await self._publish(cmd, {"type": "error", "code": failure.code, "message": failure.message})
            return error_reply(failure)
        await self._publish(cmd, {"type": "end", **(reply.result or {})})
        return reply

    def _user_message(self, cmd: SendChat) -> Any:
        async def handler(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
            stream = conversation_stream(cmd.conversation_id)
            version, exists = await _conversation_version(conn, stream)
            events: list[msgspec.Struct] = []
            if not exists:
                events.append(
                    ConversationStarted(
                        conversation_id=cmd.conversation_id,
                        user_id=cmd.user_id,
                        group_id=cmd.group_id,
                        platform=cmd.platform,
                        creator=env.actor.subject if env.actor else "",
                    )
                )
            message_id = uuid.uuid4().hex
            events.append(MessageAdded(message_id=message_id, role="user", content=cmd.message))
            return Decision(
                [StreamAppend(stream, version, [event_from_struct(e) for e in events])],
                result={"messageId": message_id},
            )

        return handler

    async def _keepalive(self, cmd: SendChat) -> None:
        """While the LLM works, tell the streaming edge the turn is alive: silence means the worker died."""
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            await self._publish(cmd, {"type": "keepalive"})

    def _assistant_message(self, cmd: SendChat, turn: Turn, reply_to: str | None) -> Any:
        usage = turn.result.usage if turn.result and turn.result.usage else None
        usage_out = (
            {
                "promptTokens": usage.prompt_tokens,
                "completionTokens": usage.completion_tokens,
                "totalTokens": usage.total_tokens,
            }
            if usage
            else {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0}
        )
        tool_calls = [msgspec.to_builtins(t) for t in (turn.result.tool_calls if turn.result else [])]
        model = turn.result.model if turn.result and turn.result.model else turn.model
        metadata = {
            "channelId": turn.channel.id if turn.channel else None,
            "model": model,
            "usage": usage_out,
            "latencyMs": round(turn.latency_ms, 1),
            "ttftMs": round(turn.ttft_ms, 1) if turn.ttft_ms is not None else None,
            "channelsTried": turn.tried,
            "replyTo": reply_to,
            "status": "ok" if turn.result is not None else "failed",
        }
        content = turn.result.content if turn.result is not None else turn.text

        async def handler(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
            stream = conversation_stream(cmd.conversation_id)
            version, exists = await _conversation_version(conn, stream)
            if not exists:
                raise DomainError("CONVERSATION_NOT_FOUND", "the conversation was deleted during the turn")
            message_id = uuid.uuid4().hex
            event = MessageAdded(
                message_id=message_id, role="assistant", content=content, tool_calls=tool_calls, metadata=metadata
            )
            result = {
                "response": content,
                "conversationId": cmd.conversation_id,
                "messageId": message_id,
                "model": model,
                "channelId": metadata["channelId"],
                "toolCalls": tool_calls,
                "usage": usage_out,
            }
            return Decision([StreamAppend(stream, version, [event_from_struct(event)])], result=result)

        return handler

    async def _publish(self, cmd: SendChat, frame: dict[str, Any]) -> None:
        if cmd.stream_subject and self.nc.is_connected:
            await self.nc.publish(cmd.stream_subject, _encode(frame))

    async def _prepare(self, cmd: SendChat, *, include_current: bool) -> tuple[ChatRequest, list[Channel], str | None]:
        config = self.config.document
        pool = self.store.pool
        group = await group_queries.get_group(pool, cmd.group_id) if cmd.group_id else None
        overrides = group["overrides"] if group else {}
        preset_id = cmd.preset_id or overrides.get("presetId") or config.presets.default_id
        preset = await preset_queries.get_preset(pool, preset_id) if preset_id else None
        if preset is None:
            if cmd.preset_id:
                raise DomainError("PRESET_NOT_FOUND", f"preset '{cmd.preset_id}' not found")
            preset = await preset_queries.get_default_preset(pool)
        max_messages = (
            preset.context.max_messages if preset and preset.context.max_messages else None
        ) or config.context.max_messages
        max_tokens = (
            preset.context.max_tokens if preset and preset.context.max_tokens else None
        ) or config.context.max_tokens
        # `maxMessages` counts the new message too.
        limit = max(0, max_messages - 1) if include_current else max_messages
        history = await queries.context_messages(pool, cmd.conversation_id, limit) if limit else []
        messages = [
            ChatMessage(role=m["role"], content=m["content"]) for m in history if m["role"] in ("user", "assistant")
        ]
        if include_current:
            messages.append(ChatMessage(role="user", content=cmd.message))
        budget = max_tokens * CHARS_PER_TOKEN
        while len(messages) > 1 and sum(len(m.content) for m in messages) > budget:
            messages.pop(0)
        if preset and preset.system_prompt:
            messages.insert(0, ChatMessage(role="system", content=preset.system_prompt))
        model = (
            cmd.model or (preset.model if preset else "") or overrides.get("model") or config.llm.default_model or None
        )
        params = preset.model_params if preset else None
        request = ChatRequest(
            model=model or "",
            messages=messages,
            temperature=params.temperature if params else None,
            top_p=params.top_p if params else None,
            max_tokens=params.max_tokens if params else None,
            stop=params.stop if params else None,
            presence_penalty=params.presence_penalty if params else None,
            frequency_penalty=params.frequency_penalty if params else None,
        )
        pinned = cmd.channel_id or overrides.get("channelId") or None
        channels = await channel_queries.enabled_channels(pool)
        if pinned and not any(c.id == pinned for c in channels):
            raise DomainError("CHANNEL_NOT_FOUND", f"channel '{pinned}' not found or disabled")
        return request, channels, pinned

    async def _call(self, cmd: SendChat, request: ChatRequest, channels: list[Channel], pinned: str | None) -> Turn:
        ordered = order_channels(channels, request.model or None, pinned=pinned)
        tried: list[dict[str, Any]] = []
        started = time.monotonic()
        last_error: ProviderError | None = None
        for channel in ordered:
            model = request.model or (channel.models[0] if channel.models else "")
            req = msgspec.structs.replace(request, model=model)
            adv = channel.advanced
            if req.temperature is None and adv.get("temperature") is not None:
                req = msgspec.structs.replace(req, temperature=adv["temperature"])
            if req.max_tokens is None and adv.get("maxTokens") is not None:
                req = msgspec.structs.replace(req, max_tokens=adv["maxTokens"])
            adapter = ADAPTERS[channel.adapter_type]
            text: list[str] = []
            first_token: float | None = None
            t0 = time.monotonic()
            try:
                target = target_of(channel)  # a key that does not decrypt is this channel's failure
                http = self.http.client_for(target)
                if cmd.stream_subject:
                    result: ChatResult | None = None
                    async for item in adapter.stream(http, target, req):
                        if isinstance(item, TextDelta) and item.text:
                            if first_token is None:
                                first_token = time.monotonic()
                            text.append(item.text)
                            await self._publish(cmd, {"type": "content", "text": item.text})
                        elif isinstance(item, StreamDone):
                            result = item.result
                    if result is None:
                        raise ProviderError("bad_response", "stream ended without a result")
                else:
                    result = await adapter.complete(http, target, req)
                    first_token = time.monotonic()
                tried.append({"id": channel.id})
                return Turn(
                    channel,
                    result,
                    "".join(text),
                    tried,
                    (time.monotonic() - t0) * 1000,
                    (first_token - t0) * 1000 if first_token else None,
                    None,
                    model,
                )
            except Exception as unexpected:
                if not isinstance(unexpected, ProviderError):
                    # A turn never fails with a 500 because one channel is misconfigured: it is a failed try.
                    log.warning("channel %s failed unexpectedly: %r", channel.id, unexpected)
                exc = (
                    unexpected
                    if isinstance(unexpected, ProviderError)
                    else ProviderError("connection", f"{type(unexpected).__name__}: {unexpected}"[:300])
                )
                last_error = exc
                tried.append(
                    {
                        "id": channel.id,
                        "error": exc.message[:300],
                        "kind": exc.kind,
                        "status": exc.status,
                        "retryAfter": exc.retry_after,
                    }
                )
                if first_token is not None:  # never switch once a token has been streamed
                    return Turn(
                        channel,
                        None,
                        "".join(text),
                        tried,
                        (time.monotonic() - t0) * 1000,
                        (first_token - t0) * 1000,
                        exc,
                        model,
                    )
                if not exc.retryable:
                    break
        return Turn(None, None, "", tried, (time.monotonic() - started) * 1000, None, last_error, request.model)

    def _turn_error(self, turn: Turn) -> DomainError:
        if not turn.tried:
            return DomainError(
                "CHANNEL_UNAVAILABLE", "no enabled channel serves this model; add or enable a channel", status=503
            )
        exc = turn.error
        details = [{k: v for k, v in t.items() if v is not None} for t in turn.tried]
        if exc is not None and not exc.retryable and exc.kind != "bad_response":
            return DomainError("MODEL_ERROR", f"the provider refused: {exc}", status=502, details=details)
        return DomainError("CHANNEL_UNAVAILABLE", f"every channel failed; last: {exc}", status=502, details=details)

    async def _record_health(self, envelope: CommandEnvelope, turn: Turn) -> None:
        for i, tried in enumerate(turn.tried):
            failed = "error" in tried
            retry_after = tried.get("retryAfter") if tried.get("kind") == "rate_limited" else None
            if failed and tried.get("kind") == "rate_limited" and retry_after is None:
                retry_after = 30.0
            payload = {"id": tried["id"], "ok": not failed, "error": tried.get("error"), "retry_after": retry_after}
            if not failed and turn.channel is not None and turn.channel.status == "active":
                continue  # nothing would change: spare the write
            try:
                await self.store.execute(_derived(envelope, f"health-{i}", payload), record_health)
            except Exception:
                log.exception("could not record the health of channel %s", tried["id"])
