"""Failover across channels for one chat turn (API.md §5): selection order, retry on a retryable
failure, never switch once a token has been streamed; what was tried is kept for the reply."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from schemas.channels import Channel
from schemas.errors import DomainError
from schemas.llm import ChatRequest, ChatResult, StreamDone, TextDelta
from services.channels.probe import target_of
from services.channels.providers.errors import ProviderError
from services.channels.providers.registry import ADAPTERS, HttpClients
from services.channels.selection import order_channels

log = logging.getLogger("chatbus.chat")


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


async def call_with_failover(
    http_clients: HttpClients,
    request: ChatRequest,
    channels: list[Channel],
    pinned: str | None,
    on_text: Callable[[str], Awaitable[None]] | None,
) -> Turn:
    """Try the channels in selection order until one answers. With `on_text` the reply is streamed
    and each delta handed to it; once one has been, the turn never moves to another channel."""
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
            target = target_of(channel)  # opens the sealed key: one that does not decrypt fails this channel only
            http = http_clients.client_for(target)
            if on_text is not None:
                result: ChatResult | None = None
                async for item in adapter.stream(http, target, req):
                    if isinstance(item, TextDelta) and item.text:
                        if first_token is None:
                            first_token = time.monotonic()
                        text.append(item.text)
                        await on_text(item.text)
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


def turn_error(turn: Turn) -> DomainError:
    """Why a turn got no complete reply, as the caller sees it."""
    if not turn.tried:
        return DomainError(
            "CHANNEL_UNAVAILABLE", "no enabled channel serves this model; add or enable a channel", status=503
        )
    exc = turn.error
    details = [{k: v for k, v in t.items() if v is not None} for t in turn.tried]
    if exc is not None and not exc.retryable and exc.kind != "bad_response":
        return DomainError("MODEL_ERROR", f"the provider refused: {exc}", status=502, details=details)
    return DomainError("CHANNEL_UNAVAILABLE", f"every channel failed; last: {exc}", status=502, details=details)
