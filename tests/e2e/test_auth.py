"""Auth routes of both dialects, end to end (API.md §2, §3)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt

from services.auth import tokens
from tests.stack import ADMIN_PASSWORD, Stack


def code_of(r: httpx.Response) -> str:
    return str(r.json()["code"])


async def test_chatai_login_sets_cookie_and_token_works(stack: Stack) -> None:
    c = stack.client()
    r = await c.post("/api/auth/login", json={"password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["user"] == {"username": "admin", "scope": "admin"} and data["expiresAt"]
    cookie = r.headers["set-cookie"]
    assert "auth_token=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    # The client now carries the cookie: authenticated by cookie alone.
    r = await c.get("/api/auth/verify")
    assert r.status_code == 200, r.text
    v = r.json()["data"]
    assert v["valid"] is True and v["username"] == "admin" and v["isAdmin"] is True and v["scope"] == "admin"
    # And by Bearer alone.
    bearer = stack.client(token=data["token"])
    assert (await bearer.get("/api/auth/me")).json()["data"]["username"] == "admin"
    r = await c.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200


async def test_nekobot_login_shape(stack: Stack) -> None:
    c = stack.client()
    r = await c.post("/api/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["status"] == "success"
    assert body["token_type"] == "bearer" and body["access_token"] == body["data"]["access_token"]
    assert body["data"]["username"] == "admin"
    r = await stack.client(token=body["access_token"]).get("/api/presets")
    assert r.status_code == 200
    r = await c.post("/api/login", json={"username": "admin"})
    assert r.status_code == 400 and code_of(r) == "VALIDATION_ERROR"


async def test_bad_credentials_and_missing_fields(stack: Stack) -> None:
    c = stack.client()
    r = await c.post("/api/auth/login", json={"password": "wrong"})
    assert r.status_code == 401 and code_of(r) == "INVALID_CREDENTIALS"
    r = await c.post("/api/auth/login", json={"username": "nobody", "password": "wrong"})
    assert r.status_code == 401 and code_of(r) == "INVALID_CREDENTIALS"
    r = await c.post("/api/auth/login", json={})
    assert r.status_code == 400 and code_of(r) == "VALIDATION_ERROR"
    r = await c.post("/api/auth/login", content=b"nope", headers={"content-type": "application/json"})
    assert r.status_code == 400


async def test_every_protected_route_needs_a_token(stack: Stack) -> None:
    c = stack.client()
    for method, path in [
        ("GET", "/api/presets"),
        ("POST", "/api/presets"),
        ("GET", "/api/auth/verify"),
        ("GET", "/api/auth/me"),
        ("POST", "/api/auth/logout"),
        ("POST", "/api/logout"),
        ("GET", "/api/personalities"),
        ("DELETE", "/api/presets/default"),
        ("POST", "/api/auth/refresh"),
        ("GET", "/api/events/sse"),
    ]:
        r = await c.request(method, path)
        assert r.status_code == 401, (method, path, r.text)
        assert code_of(r) == "AUTH_REQUIRED"
    # `?token=` is accepted only on streams.
    token = await stack.login()
    r = await c.get("/api/presets", params={"token": token})
    assert r.status_code == 401


async def test_bad_tokens_get_the_right_code(stack: Stack) -> None:
    now = int(time.time())
    claims = {
        "sub": "admin",
        "jti": "x1",
        "iat": now,
        "exp": now + 600,
        "iss": "chatbus",
        "aud": tokens.API_AUDIENCE,
        "scope": "admin",
    }
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    cases = {
        "alg none": (f"{header}.{payload}.", "INVALID_TOKEN"),
        "wrong key": (jwt.encode(claims, "not-the-secret", algorithm="HS256"), "INVALID_TOKEN"),
        "wrong audience": (
            jwt.encode({**claims, "aud": "elsewhere"}, stack.secret, algorithm="HS256"),
            "INVALID_TOKEN",
        ),
        "expired": (
            jwt.encode({**claims, "exp": now - 10}, stack.secret, algorithm="HS256"),
            "TOKEN_EXPIRED",
        ),
        "garbage": ("abc.def.ghi", "INVALID_TOKEN"),
        "link token used as session": (
            tokens.issue(stack.secret, "admin", "admin", audience=tokens.LINK_AUDIENCE)[0],
            "INVALID_TOKEN",
        ),
    }
    for name, (token, code) in cases.items():
        r = await stack.client(token=token).get("/api/auth/verify")
        assert r.status_code == 401, name
        assert code_of(r) == code, name
    good = jwt.encode(claims, stack.secret, algorithm="HS256")
    assert (await stack.client(token=good).get("/api/auth/verify")).status_code == 200


async def test_logout_and_refresh_revoke_the_old_token(stack: Stack) -> None:
    token = await stack.login()
    c = stack.client(token=token)
    r = await c.post("/api/auth/refresh")
    assert r.status_code == 200, r.text
    new_token = r.json()["data"]["token"]
    assert new_token != token
    r = await c.get("/api/auth/verify")
    assert r.status_code == 401 and code_of(r) == "INVALID_TOKEN"
    fresh = stack.client(token=new_token)
    assert (await fresh.get("/api/auth/verify")).status_code == 200
    r = await fresh.post("/api/logout")
    assert r.status_code == 200 and r.json()["data"] is None
    assert "auth_token=" in r.headers["set-cookie"]
    r = await fresh.get("/api/presets")
    assert r.status_code == 401 and code_of(r) == "INVALID_TOKEN"
    t3 = await stack.login()
    assert (await stack.client(token=t3).post("/api/auth/logout")).status_code == 200
    assert (await stack.client(token=t3).get("/api/auth/me")).status_code == 401


async def test_me_and_password_change(stack: Stack) -> None:
    token = await stack.login()
    c = stack.client(token=token)
    me = (await c.get("/api/auth/me")).json()["data"]
    assert me["username"] == "admin" and me["isAdmin"] is True and me["createdAt"] and me["lastLoginAt"]
    r = await c.post("/api/auth/password", json={"oldPassword": "wrong-one", "newPassword": "another-pass-1"})
    assert r.status_code == 401 and code_of(r) == "INVALID_CREDENTIALS"
    r = await c.post("/api/auth/password", json={"oldPassword": ADMIN_PASSWORD, "newPassword": "short"})
    assert r.status_code == 400 and code_of(r) == "VALIDATION_ERROR"
    r = await c.post("/api/auth/password", json={"oldPassword": ADMIN_PASSWORD, "newPassword": "another-pass-1"})
    assert r.status_code == 200, r.text
    anon = stack.client()
    assert (await anon.post("/api/auth/login", json={"password": ADMIN_PASSWORD})).status_code == 401
    assert (await anon.post("/api/auth/login", json={"password": "another-pass-1"})).status_code == 200


async def test_lockout_after_five_failures_per_user_and_ip(stack: Stack) -> None:
    c = stack.client()
    for _ in range(5):
        r = await c.post("/api/login", json={"username": "admin", "password": "nope"})
        assert r.status_code == 401
    r = await c.post("/api/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 429 and code_of(r) == "RATE_LIMITED"
    assert int(r.headers["retry-after"]) > 0
    async with stack.workers[0].pool.acquire() as conn:
        failed = await conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'LoginFailed'")
    assert failed == 5


async def test_login_links_single_use_and_permanent(stack: Stack) -> None:
    c = stack.client(token=await stack.login())
    r = await c.post("/api/auth/links", json={})
    assert r.status_code == 201, r.text
    link = r.json()["data"]
    assert "/login/token?token=" in link["url"]
    anon = stack.client()
    r = await anon.get("/login/token", params={"token": link["token"]})
    assert r.status_code == 302 and r.headers["location"] == "/" and "auth_token=" in r.headers["set-cookie"]
    r = await anon.get("/login/token", params={"token": link["token"]})
    assert r.status_code == 401 and code_of(r) == "INVALID_TOKEN"

    r = await c.post("/api/auth/links", json={"permanent": True})
    perm = r.json()["data"]["token"]
    for _ in range(2):
        r = await stack.client().post("/api/auth/login", json={"token": perm})
        assert r.status_code == 200, r.text
    r = await anon.post("/api/auth/login", json={"token": "bad"})
    assert r.status_code == 401
