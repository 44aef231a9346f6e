"""The global rate limit (API.md §2) and the bus-down guard, as one ASGI middleware.

Counting happens in NATS, not in the edge: each request adds 1 to the JetStream counter
`ratelimit.<window>.<client>` (ADR-49) and the ack carries the new total, so every edge instance
shares one count per client per 60 s window. The client is the token's subject when the request
carries a valid token, else its address. `/health` is exempt; a stream counts once, at connect."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import nats.errors
from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from nats.aio.client import Client as NATS

from api.envelope import encode, error_body
from bus import subjects
from schemas.errors import DomainError

log = logging.getLogger("chatbus.ratelimit")

WINDOW = 60
EXEMPT_PATHS = frozenset({"/health"})
COUNTER_TIMEOUT = 0.5


class _CounterAck(msgspec.Struct):
    val: str = "0"
    error: dict[str, Any] | None = None


_decode_ack = msgspec.json.Decoder(_CounterAck).decode


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds at which the window ends

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]


class RateLimiter:
    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self._last_failure_log = 0.0

    async def hit(self, client_key: str, limit: int) -> Verdict | None:
        """Count one request; None when the limiter is off or cannot count (it fails open)."""
        if limit <= 0:
            return None
        now = time.time()
        window = int(now // WINDOW)
        reset = (window + 1) * WINDOW
        digest = hashlib.blake2b(client_key.encode(), digest_size=12).hexdigest()
        try:
            msg = await self.nc.request(
                subjects.rate_limit_counter(window, digest), b"", headers={"Nats-Incr": "1"}, timeout=COUNTER_TIMEOUT
            )
            ack = _decode_ack(msg.data)
            if ack.error:
                raise RuntimeError(str(ack.error))
            count = int(ack.val)
        except (nats.errors.Error, RuntimeError, ValueError, msgspec.DecodeError) as exc:
            if now - self._last_failure_log > 10:
                self._last_failure_log = now
                log.warning("rate limiter cannot count (%r); letting requests through", exc)
            return None
        return Verdict(count <= limit, limit, max(0, limit - count), reset)


def client_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    from api.security import client_ip, query_token_allowed, token_from
    from api.state import edge_of

    token = token_from(connection, allow_query=query_token_allowed(connection))
    if token:
        try:
            return "sub:" + edge_of(connection).tokens.decode(token).sub
        except DomainError:
            pass
    return "ip:" + client_ip(connection)


def _reply(status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> list[Message]:
    content = encode(body)
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *headers,
            ],
        },
        {"type": "http.response.body", "body": content, "more_body": False},
    ]


def rate_limit_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in EXEMPT_PATHS:
            await app(scope, receive, send)
            return
        from api.state import Edge

        edge: Edge = scope["app"].state["edge"]
        if not edge.nc.is_connected:
            await _refuse(
                scope, send, 503, error_body("UNAVAILABLE", "the message bus is unavailable; retry shortly"), []
            )
            return
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope, receive)
        verdict = await edge.limiter.hit(
            client_key(connection), edge.config_cache.document.rate_limit.requests_per_minute
        )
        if verdict is None:
            await app(scope, receive, send)
            return
        headers = verdict.headers()
        if not verdict.allowed:
            retry_after = max(1, verdict.reset - int(time.time()))
            body = error_body(
                "RATE_LIMITED", f"rate limit of {verdict.limit} requests per minute reached; retry in {retry_after}s"
            )
            await _refuse(scope, send, 429, body, [*headers, (b"retry-after", str(retry_after).encode())])
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


async def _refuse(
    scope: Scope, send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    if scope["type"] == "websocket":
        # Refused before accept: the client sees the handshake fail (HTTP 403 from the server).
        await send({"type": "websocket.close", "code": 1013 if status == 503 else 1008, "reason": body["message"]})
        return
    for message in _reply(status, body, headers):
        await send(message)
