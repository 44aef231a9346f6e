"""Auth routes of both dialects (API.md §3)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect

from api import commands
from api.envelope import ApiError, encode, error_body, ok
from api.pagination import PageNumber, PageSize, page
from api.security import COOKIE, Principal, client_ip, principal_of, require_auth
from api.state import edge_of
from schemas.auth import LoginBody, LoginLinkBody, NekoLoginBody, PasswordChangeBody
from schemas.errors import DomainError
from services.auth import queries, tokens

DEFAULT_USERNAME = "admin"


def iso_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def session_cookie(token: str, max_age: int) -> Cookie:
    return Cookie(key=COOKIE, value=token, httponly=True, samesite="lax", max_age=max_age, path="/")


def cleared_cookie() -> Cookie:
    return Cookie(key=COOKIE, value="", httponly=True, samesite="lax", max_age=0, path="/")


def _retry_after(exc: ApiError) -> ApiError:
    if exc.code == "RATE_LIMITED":
        seconds = next((d.get("retryAfter") for d in exc.details or [] if isinstance(d, dict)), 900)
        exc.headers["Retry-After"] = str(seconds)
    return exc


async def password_login(request: Request[Any, Any, Any], username: str, password: str) -> tuple[str, str, int]:
    """Check the password through the auth workers; returns (username, scope, password epoch)."""
    try:
        reply = await commands.send(
            request,
            "auth",
            "login",
            {"username": username, "password": password, "client_ip": client_ip(request)},
            anonymous=True,
        )
    except ApiError as exc:
        raise _retry_after(exc) from exc
    if not isinstance(reply.result, dict):
        raise ApiError("INVALID_CREDENTIALS", "wrong username or password")
    return reply.result["username"], reply.result["scope"], int(reply.result.get("pwv", 0))


async def link_login(request: Request[Any, Any, Any], link_token: str) -> tuple[str, str, int]:
    """Consume a login-link token (single use unless permanent); returns (username, scope, epoch)."""
    edge = edge_of(request)
    try:
        claims = tokens.decode(edge.config.jwt_secret, link_token, audience=tokens.LINK_AUDIENCE)
    except DomainError as exc:
        raise ApiError(exc.code, exc.message) from exc
    if edge.revoked.is_void(claims):
        raise ApiError("INVALID_TOKEN", "this login link has been revoked")
    if not claims.permanent:
        await commands.send(
            request,
            "auth",
            "consume_link",
            {"jti": claims.jti, "username": claims.sub, "expires_at": float(claims.exp)},
            anonymous=True,
        )
    return claims.sub, claims.scope, claims.pwv


def issue_session(
    request: Request[Any, Any, Any], username: str, scope: str, *, pwv: int = 0, auth_time: int | None = None
) -> tuple[str, tokens.TokenClaims]:
    """A session token. A refresh passes the session's `auth_time`: the token never outlives
    CHATBUS_SESSION_MAX_AGE after the login that began the session."""
    edge = edge_of(request)
    now = int(time.time())
    started = now if auth_time is None else auth_time
    expires_at = min(now + edge.config.token_ttl, started + edge.config.session_max_age)
    return tokens.issue(edge.config.jwt_secret, username, scope, pwv=pwv, auth_time=started, expires_at=expires_at)


async def revoke(request: Request[Any, Any, Any], principal: Principal) -> None:
    """Revoke the caller's token. The auth worker refuses a second revocation of one jti, so of
    concurrent refreshes of one token exactly one goes on to mint a new token. Never answered from an
    Idempotency-Key's stored result, for the same reason."""
    await commands.send(
        request,
        "auth",
        "revoke_token",
        {
            "jti": principal.claims.jti,
            "username": principal.username,
            "expires_at": float(principal.claims.exp),
        },
        idempotent=False,
    )
    await edge_of(request).revoked.announce(principal.claims.jti, float(principal.claims.exp))


class PublicAuthController(Controller):
    tags = ["auth"]

    @post("/api/auth/login", status_code=200)
    async def login(self, request: Request[Any, Any, Any], data: LoginBody) -> Response[bytes]:
        if data.token:
            username, scope, pwv = await link_login(request, data.token)
        elif data.password:
            username, scope, pwv = await password_login(request, data.username or DEFAULT_USERNAME, data.password)
        else:
            raise ApiError(
                "VALIDATION_ERROR",
                "send {password}, {username, password} or {token}",
                details=[{"field": "password", "reason": "required"}],
            )
        token, claims = issue_session(request, username, scope, pwv=pwv)
        data_out = {
            "token": token,
            "expiresAt": iso_time(claims.exp),
            "user": {"username": username, "scope": scope},
        }
        response = ok(data_out)
        response.cookies.append(session_cookie(token, claims.exp - claims.iat))
        return response

    @post("/api/login", status_code=200)
    async def neko_login(self, request: Request[Any, Any, Any], data: NekoLoginBody) -> Response[bytes]:
        username, scope, pwv = await password_login(request, data.username, data.password)
        token, claims = issue_session(request, username, scope, pwv=pwv)
        payload = {"access_token": token, "token_type": "bearer", "username": username}
        body = {"success": True, "status": "success", "data": payload, **payload}
        response = Response(content=encode(body), media_type="application/json")
        response.cookies.append(session_cookie(token, claims.exp - claims.iat))
        return response

    @get("/login/token")
    async def login_with_link(self, request: Request[Any, Any, Any], token: str) -> Response[Any]:
        try:
            username, scope, pwv = await link_login(request, token)
        except ApiError as exc:
            return Response(
                content=encode(error_body(exc.code, exc.message)),
                status_code=exc.status,
                media_type="application/json",
            )
        session, claims = issue_session(request, username, scope, pwv=pwv)
        return Redirect(path="/", status_code=302, cookies=[session_cookie(session, claims.exp - claims.iat)])


class AuthController(Controller):
    tags = ["auth"]
    guards = [require_auth]

    @get("/api/auth/verify")
    async def verify(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        p = principal_of(request)
        return ok(
            {
                "valid": True,
                "userId": p.username,
                "username": p.username,
                "isAdmin": p.is_admin,
                "scope": p.scope,
                "expiresAt": iso_time(p.claims.exp),
            }
        )

    @post("/api/auth/refresh", status_code=200)
    async def refresh(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        p = principal_of(request)
        if time.time() >= p.claims.auth_time + edge_of(request).config.session_max_age:
            raise ApiError("TOKEN_EXPIRED", "the session is older than its maximum age; log in again")
        await revoke(request, p)
        token, claims = issue_session(request, p.username, p.scope, pwv=p.claims.pwv, auth_time=p.claims.auth_time)
        response = ok({"token": token, "expiresAt": iso_time(claims.exp)})
        response.cookies.append(session_cookie(token, claims.exp - claims.iat))
        return response

    @post(["/api/auth/logout", "/api/logout"], status_code=200)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        await revoke(request, principal_of(request))
        response = ok(None)
        response.cookies.append(cleared_cookie())
        return response

    @get("/api/auth/me")
    async def me(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        p = principal_of(request)
        user = await queries.get_user(edge_of(request).pool, p.username)
        return ok(
            {
                "username": p.username,
                "isAdmin": p.is_admin,
                "scope": p.scope,
                "createdAt": user.created_at if user else None,
                "lastLoginAt": user.last_login_at if user else None,
            }
        )

    @post("/api/auth/password", status_code=200)
    async def change_password(self, request: Request[Any, Any, Any], data: PasswordChangeBody) -> Response[bytes]:
        p = principal_of(request)
        if not p.is_admin:
            raise ApiError("FORBIDDEN", "group tokens cannot change a password")
        reply = await commands.send(
            request,
            "auth",
            "change_password",
            {"username": p.username, "old_password": data.old_password, "new_password": data.new_password},
        )
        # Every token and login link issued before now is void, on every edge (this one included).
        await edge_of(request).revoked.announce_epoch(p.username, int(reply.result["pwv"]))
        return ok(None)

    @post("/api/auth/links", status_code=201)
    async def create_link(self, request: Request[Any, Any, Any], data: LoginLinkBody | None = None) -> Response[bytes]:
        p = _admin(request, "only an admin can create login links")
        permanent = bool(data and data.permanent)
        edge = edge_of(request)
        reply = await commands.send(request, "auth", "create_link", {"username": p.username, "permanent": permanent})
        link = reply.result
        token, claims = tokens.issue(
            edge.config.jwt_secret,
            p.username,
            p.scope,
            audience=tokens.LINK_AUDIENCE,
            permanent=permanent,
            pwv=int(link["pwv"]),
            jti=str(link["jti"]),
            expires_at=int(link["expires_at"]),
        )
        base = (edge.config.public_url or str(request.base_url)).rstrip("/")
        return ok(
            {
                "id": claims.jti,
                "token": token,
                "url": f"{base}/login/token?token={token}",
                "expiresAt": iso_time(claims.exp),
                "permanent": permanent,
            },
            status=201,
        )

    @get("/api/auth/links")
    async def list_links(
        self, request: Request[Any, Any, Any], page_number: PageNumber = 1, page_size: PageSize = 20
    ) -> Response[bytes]:
        """The caller's login links that still work, without their tokens."""
        p = _admin(request, "only an admin has login links")
        items, total = await queries.list_links(
            edge_of(request).pool, p.username, page=page_number, page_size=page_size
        )
        return ok(page([msgspec.to_builtins(i) for i in items], total, page_number, page_size))

    @delete("/api/auth/links/{link_id:str}", status_code=200)
    async def revoke_link(self, request: Request[Any, Any, Any], link_id: str) -> Response[bytes]:
        p = _admin(request, "only an admin has login links")
        reply = await commands.send(request, "auth", "revoke_link", {"username": p.username, "jti": link_id})
        await edge_of(request).revoked.announce(link_id, float(reply.result["expires_at"]))
        return ok(None)


def _admin(request: Request[Any, Any, Any], message: str) -> Principal:
    p = principal_of(request)
    if not p.is_admin:
        raise ApiError("FORBIDDEN", message)
    return p
