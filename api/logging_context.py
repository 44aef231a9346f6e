"""Every HTTP request (and WebSocket session) runs with its request id in `bus.logs.request_id`, so each
line logged while handling it carries the id that the client sees in `X-Request-ID`."""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from api.envelope import scope_request_id
from bus import logs


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        # Litestar puts an exception handler inside the middleware stack, so a 500 is logged (with this id)
        # before the reset below.
        token = logs.set_request_id(scope_request_id(scope))
        try:
            await app(scope, receive, send)
        finally:
            logs.reset_request_id(token)

    return middleware
