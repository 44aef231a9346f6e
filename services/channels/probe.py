"""Channel test and model list (API.md §5): real calls to the provider, outside any transaction;
a saved channel's status follows the outcome of its test."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

from bus import crypto
from bus.eventstore import EventStore, error_reply
from bus.worker import CommandFn
from schemas.channels import Channel
from schemas.envelope import CommandEnvelope, CommandReply
from schemas.errors import DomainError
from schemas.llm import ChatMessage, ChatRequest, ProviderTarget
from services.channels import domain, queries
from services.channels.handlers import record_health
from services.channels.providers.errors import ProviderError
from services.channels.providers.registry import ADAPTERS, HttpClients
from services.channels.selection import pick_key

TEST_PROMPT = "Reply with the single word: pong"


class ProbeRequest(msgspec.Struct, kw_only=True):
    id: str | None = None
    fields: dict[str, Any] | None = None
    model: str | None = None


def target_of(channel: Channel, *, saved: bool = True) -> ProviderTarget:
    """Where a call goes, with the real secrets: a saved channel's are opened here, just before the call.
    An unsaved channel's come from the client as they are; opening them would let a client that copied
    a ciphertext out of a dump have it decrypted and sent to a URL of its choosing."""
    adapter = ADAPTERS[channel.adapter_type]
    reveal = crypto.reveal if saved else str
    proxy = reveal(channel.proxy) if channel.proxy else channel.proxy
    return ProviderTarget(
        adapter_type=channel.adapter_type,
        base_url=adapter.normalize_base_url(channel.base_url),
        api_key=reveal(pick_key(channel) or ""),
        connect_timeout_ms=int(channel.timeout.get("connect", 10_000)),
        read_timeout_ms=int(channel.timeout.get("read", 120_000)),
        proxy=proxy,
        custom_headers={name: reveal(value) for name, value in channel.custom_headers.items()},
    )


def _unsaved(fields: dict[str, Any]) -> Channel:
    valid = domain.validate_fields(fields)
    now = time.time()
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(now, UTC)
    return Channel(
        id="unsaved",
        name=valid["name"],
        adapter_type=valid["adapterType"],
        base_url=valid["baseUrl"],
        api_key=valid.get("apiKey"),
        api_keys=valid.get("apiKeys", []),
        models=valid.get("models", []),
        priority=valid["priority"],
        weight=valid["weight"],
        enabled=True,
        timeout=valid["timeout"],
        retry=valid["retry"],
        advanced=valid["advanced"],
        custom_headers=valid.get("customHeaders", {}),
        proxy=valid.get("proxy"),
        status="idle",
        last_error=None,
        tested_at=None,
        cooldown_until=None,
        created_at=stamp,
        updated_at=stamp,
        version=0,
    )


def provider_failure(exc: ProviderError) -> DomainError:
    details = [{"kind": exc.kind, "upstreamStatus": exc.status, "upstreamMessage": exc.message}]
    if exc.kind in ("connection", "timeout"):
        return DomainError("CONNECTION_FAILED", f"could not reach the provider: {exc}", status=502, details=details)
    return DomainError("MODEL_ERROR", f"the provider answered with an error: {exc}", status=502, details=details)


class ChannelProbe:
    def __init__(self, store: EventStore, http: HttpClients) -> None:
        self.store = store
        self.http = http

    def handlers(self) -> dict[str, CommandFn]:
        return {"test": self.test, "models": self.models}

    async def _channel(self, req: ProbeRequest) -> Channel:
        if req.id is not None:
            channel = await queries.get_channel(self.store.pool, req.id)
            if channel is None:
                raise DomainError("CHANNEL_NOT_FOUND", f"channel '{req.id}' not found")
            return channel
        if req.fields is None:
            raise DomainError("INVALID_ARGS", "give a channel id or an unsaved channel")
        return _unsaved(req.fields)

    async def test(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            req = msgspec.convert(envelope.payload, ProbeRequest)
            channel = await self._channel(req)
        except (msgspec.ValidationError, DomainError) as exc:
            return error_reply(exc if isinstance(exc, DomainError) else DomainError("INVALID_ARGS", str(exc)))
        model = req.model or (channel.models[0] if channel.models else "")
        if not model:
            return error_reply(
                DomainError("VALIDATION_ERROR", "no model to test: give `model` or add one to the channel")
            )
        adapter = ADAPTERS[channel.adapter_type]
        target = target_of(channel, saved=req.id is not None)
        request = ChatRequest(model=model, messages=[ChatMessage(role="user", content=TEST_PROMPT)], max_tokens=16)
        started = time.monotonic()
        try:
            result = await adapter.complete(self.http.client_for(target), target, request)
        except ProviderError as exc:
            await self._record(envelope, req, ok=False, error=str(exc), retry_after=exc.retry_after)
            return error_reply(provider_failure(exc))
        except Exception as exc:  # a URL the client cannot use, and the like: still the channel's failure
            failure = ProviderError("connection", f"{type(exc).__name__}: {exc}"[:300])
            await self._record(envelope, req, ok=False, error=str(failure), retry_after=None)
            return error_reply(provider_failure(failure))
        elapsed = round((time.monotonic() - started) * 1000, 1)
        await self._record(envelope, req, ok=True, error=None, retry_after=None)
        return CommandReply(
            ok=True,
            result={"success": True, "elapsed": elapsed, "model": result.model or model, "response": result.content},
        )

    async def _record(
        self, envelope: CommandEnvelope, req: ProbeRequest, *, ok: bool, error: str | None, retry_after: float | None
    ) -> None:
        if req.id is None:
            return  # an unsaved channel has no status to update
        health = CommandEnvelope(
            command_id=uuid.uuid5(envelope.command_id, "health"),
            type="channels.record_health",
            actor=envelope.actor,
            payload={"id": req.id, "ok": ok, "error": error, "retry_after": retry_after, "tested": True},
            request_id=envelope.request_id,
            client_ip=envelope.client_ip,
        )
        await self.store.execute(health, record_health)

    async def models(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            req = msgspec.convert(envelope.payload, ProbeRequest)
            channel = await self._channel(req)
        except (msgspec.ValidationError, DomainError) as exc:
            return error_reply(exc if isinstance(exc, DomainError) else DomainError("INVALID_ARGS", str(exc)))
        adapter = ADAPTERS[channel.adapter_type]
        target = target_of(channel, saved=req.id is not None)
        try:
            models = await adapter.list_models(self.http.client_for(target), target)
        except ProviderError as exc:
            return error_reply(provider_failure(exc))
        except Exception as exc:
            return error_reply(provider_failure(ProviderError("connection", f"{type(exc).__name__}: {exc}"[:300])))
        return CommandReply(ok=True, result={"models": models, "channelId": req.id})
