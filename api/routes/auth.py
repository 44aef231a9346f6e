"""Auth routes of both dialects (API.md §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect

from api import commands
from api.envelope import ApiError, encode, error_body, ok
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


async def password_login(request: Request[Any, Any, Any], username: str, password: str) -> tuple[str, str]:
    """Check the password through the auth workers; returns (username, scope)."""
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
    return reply.result["username"], reply.result["scope"]


async def link_login(request: Request[Any, Any, Any], link_token: str) -> tuple[str, str]:
    """Consume a login-link token (single use unless permanent); returns (username, scope)."""
    try:
        claims = tokens.decode(edge_of(request).config.jwt_secret, link_token, audience=tokens.LINK_AUDIENCE)
    except DomainError as exc:
        raise ApiError(exc.code, exc.message) from exc
    if not claims.permanent:
        await commands.send(
            request,
            "auth",
            "consume_link",
            {"jti": claims.jti, "username": claims.sub, "expires_at": float(claims.exp)},
            anonymous=True,
        )
    elif edge_of(request).revoked.is_revoked(claims.jti):
        raise ApiError("INVALID_TOKEN", "this login link has been revoked")
    return claims.sub, claims.scope


def issue_session(request: Request[Any, Any, Any], username: str, scope: str) -> tuple[str, tokens.TokenClaims]:
    edge = edge_of(request)
    return tokens.issue(edge.config.jwt_secret, username, scope, ttl=edge.config.token_ttl)


async def revoke(request: Request[Any, Any, Any], principal: Principal) -> None:
    await commands.send(
        request,
        "auth",
        "revoke_token",
        {
            "jti": principal.claims.jti,
            "username": principal.username,
            "expires_at": float(principal.claims.exp),
        },
    )
    await edge_of(request).revoked.announce(principal.claims.jti, float(principal.claims.exp))


class PublicAuthController(Controller):
    tags = ["auth"]

    @post("/api/auth/login", status_code=200)
    async def login(self, request: Request[Any, Any, Any], data: LoginBody) -> Response[bytes]:
        if data.token:
            username, scope = await link_login(request, data.token)
        elif data.password:
            username, scope = await password_login(request, data.username or DEFAULT_USERNAME, data.password)
        else:
            raise ApiError(
                "VALIDATION_ERROR",
                "send {password}, {username, password} or {token}",
                details=[{"field": "password", "reason": "required"}],
            )
        token, claims = issue_session(request, username, scope)
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
        username, scope = await password_login(request, data.username, data.password)
        token, claims = issue_session(request, username, scope)
        payload = {"access_token": token, "token_type": "bearer", "username": username}
        body = {"success": True, "status": "success", "data": payload, **payload}
        response = Response(content=encode(body), media_type="application/json")
        response.cookies.append(session_cookie(token, claims.exp - claims.iat))
        return response

    @get("/login/token")
    async def login_with_link(self, request: Request[Any, Any, Any], token: str) -> Response[Any]:
        try:
            username, scope = await link_login(request, token)
        except ApiError as exc:
            return Response(
                content=encode(error_body(exc.code, exc.message)),
                status_code=exc.status,
                media_type="application/json",
            )
        session, claims = issue_session(request, username, scope)
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
        await revoke(request, p)
        token, claims = issue_session(request, p.username, p.scope)
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
        await commands.send(
            request,
            "auth",
            "change_password",
            {"username": p.username, "old_password": data.old_password, "new_password": data.new_password},
        )
        return ok(None)

    @post("/api/auth/links", status_code=201)
    async def create_link(self, request: Request[Any, Any, Any], data: LoginLinkBody | None = None) -> Response[bytes]:
        p = principal_of(request)
        if not p.is_admin:
            raise ApiError("FORBIDDEN", "only an admin can create login links")
        permanent = bool(data and data.permanent)
        edge = edge_of(request)
        token, claims = tokens.issue(
            edge.config.jwt_secret,
            p.username,
            p.scope,
            audience=tokens.LINK_AUDIENCE,
            permanent=permanent,
            ttl=tokens.PERMANENT_LINK_TTL if permanent else tokens.LINK_TTL,
        )
        base = (edge.config.public_url or str(request.base_url)).rstrip("/")
        return ok(
            {
                "token": token,
                "url": f"{base}/login/token?token={token}",
                "expiresAt": iso_time(claims.exp),
                "permanent": permanent,
            },
            status=201,
        )
