"""Authentication of every protected route (API.md §2, §3): token from Bearer, cookie, or `?token=`
on streams; HS256 JWT with issuer, audience and expiry; revocation shared by every edge via Postgres."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from api.envelope import ApiError
from api.state import edge_of
from schemas.errors import DomainError
from services.auth.tokens import TokenClaims

COOKIE = "auth_token"


@dataclass(frozen=True)
class Principal:
    username: str
    scope: str
    claims: TokenClaims
    token: str

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


# The only routes that take `?token=` (a browser cannot set headers on them): the exact paths, so that a
# token never rides in the URL of any other route, however its path ends.
QUERY_TOKEN_ROUTES = frozenset({("websocket", "/ws"), ("http", "/api/events/sse")})


def query_token_allowed(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return (connection.scope["type"], connection.scope["path"].rstrip("/")) in QUERY_TOKEN_ROUTES


def _authorization(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    # Read from the raw ASGI headers: every request asks, and building Litestar's header map costs more.
    for name, value in connection.scope["headers"]:
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return ""


def token_from(connection: ASGIConnection[Any, Any, Any, Any], *, allow_query: bool) -> str | None:
    header = _authorization(connection)
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip()
    cookie = connection.cookies.get(COOKIE)
    if cookie:
        return cookie
    if allow_query:
        return connection.query_params.get("token") or None
    return None


def decoded_claims(connection: ASGIConnection[Any, Any, Any, Any], token: str) -> TokenClaims:
    """The token's verified claims, decoded once per request: the rate limiter keys on them before the
    guard needs them. Raises DomainError for a bad token (each time asked)."""
    state = connection.scope.setdefault("state", {})
    cached = state.get("decoded_token")
    if cached is not None and cached[0] == token:
        outcome: TokenClaims | DomainError = cached[1]
    else:
        try:
            outcome = edge_of(connection).tokens.decode(token)
        except DomainError as exc:
            outcome = exc
        state["decoded_token"] = (token, outcome)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    edge = edge_of(connection)
    token = token_from(connection, allow_query=query_token_allowed(connection))
    if not token:
        raise ApiError("AUTH_REQUIRED", "authentication required: send a Bearer token or the auth_token cookie")
    try:
        claims = decoded_claims(connection, token)
    except DomainError as exc:
        raise ApiError(exc.code, exc.message) from exc
    if edge.revoked.is_void(claims):
        raise ApiError("INVALID_TOKEN", "token has been revoked")
    return Principal(claims.sub, claims.scope, claims, token)


async def require_auth(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    connection.scope.setdefault("state", {})["principal"] = await authenticate(connection)


async def require_admin(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    await require_auth(connection, handler)
    if not principal_of(connection).is_admin:
        raise ApiError("FORBIDDEN", "this route needs an admin token")


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal: Principal | None = connection.scope.get("state", {}).get("principal")
    if principal is None:
        raise ApiError("AUTH_REQUIRED", "authentication required")
    return principal


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client address; `X-Forwarded-For` counts only when the peer is a trusted proxy."""
    peer = connection.client.host if connection.client else ""
    trusted = edge_of(connection).config.trusted_proxies
    if peer in trusted:
        forwarded = connection.headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        while hops and hops[-1] in trusted:
            hops.pop()
        if hops:
            return hops[-1]
    return peer
