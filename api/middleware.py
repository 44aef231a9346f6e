"""The rate-limit middleware: every route but /health counts against the caller's global quota
(`api/ratelimit.py`); over it, 429 with Retry-After. While the bus is down, 503 before any route runs.
A GET of a page this edge has cached (`api/readcache.py`) is answered here, once counted, when the
caller passes the page's guard; everything else goes on to its route."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.envelope import ApiError, encode, error_body
from api.ratelimit import EXEMPT_PATHS, EXEMPT_PREFIXES
from api.security import authenticate, client_ip, decoded_claims, query_token_allowed, token_from
from api.state import Edge
from schemas.errors import DomainError

RESPONSE_HEADERS = "extra_response_headers"


def client_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    token = token_from(connection, allow_query=query_token_allowed(connection))
    if token:
        try:
            return "sub:" + decoded_claims(connection, token).sub
        except DomainError:
            pass
    return "ip:" + client_ip(connection)


async def _admin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """`require_admin`'s check, answered rather than raised: a caller it refuses gets Litestar's answer."""
    try:
        return (await authenticate(connection)).is_admin
    except ApiError:
        return False


def _reply(status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> list[Message]:
    return _answer(status, encode(body), headers)


def _answer(status: int, content: bytes, headers: list[tuple[bytes, bytes]]) -> list[Message]:
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
        path = scope["path"]
        if scope["type"] not in ("http", "websocket") or path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES):
            await app(scope, receive, send)
            return
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
        headers = verdict.headers() if verdict is not None else []
        if verdict is not None and not verdict.allowed:
            retry_after = verdict.retry_after
            body = error_body(
                "RATE_LIMITED", f"rate limit of {verdict.limit} requests per minute reached; retry in {retry_after}s"
            )
            await _refuse(scope, send, 429, body, [*headers, (b"retry-after", str(retry_after).encode())])
            return
        if scope["type"] == ScopeType.HTTP and scope["method"] == "GET":
            page = edge.pages.get(path, scope["query_string"])
            if page is not None and await _admin(connection):
                edge.pages.served += 1
                for message in _answer(200, page, headers):
                    await send(message)
                return
        if headers:
            scope.setdefault("state", {})[RESPONSE_HEADERS] = headers  # the app's before_send adds them to the response
        await app(scope, receive, send)

    return middleware


async def _refuse(
    scope: Scope, send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    if scope["type"] == ScopeType.WEBSOCKET:
        # Refused before accept: the client sees the handshake fail (HTTP 403 from the server).
        await send({"type": "websocket.close", "code": 1013 if status == 503 else 1008, "reason": body["message"]})
        return
    for message in _reply(status, body, headers):
        await send(message)
