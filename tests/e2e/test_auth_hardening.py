"""Issue 7, items 1-3: idempotency keys, the login lockout and the end of sessions, attacked through a
real edge as an outsider would."""

from __future__ import annotations

import asyncio
import time

import jwt

from services.auth import tokens
from tests.e2e.test_group_admin import issue_code_over_the_bus
from tests.e2e.test_presets import envelope_error
from tests.stack import ADMIN_PASSWORD, Stack

NEW_PASSWORD = "a-brand-new-password"


async def login_failures(stack: Stack) -> int:
    async with stack.workers[0].pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'LoginFailed'"))


# ---- 1. idempotency keys ----


async def test_group_login_key_replay_does_not_hand_out_a_token(stack: Stack) -> None:
    code = await issue_code_over_the_bus(stack, "4242")
    key = {"Idempotency-Key": "1"}
    r = await stack.client().post("/api/group-admin/login", json={"code": code}, headers=key)
    assert r.status_code == 200, r.text
    # An attacker with a wrong code and the same key must not get the group's token.
    attacker = stack.client()
    envelope_error(
        await attacker.post("/api/group-admin/login", json={"code": "ZZZZZZ"}, headers=key), 401, "INVALID_CREDENTIALS"
    )
    envelope_error(
        await attacker.post("/api/group-admin/login", json={"code": code}, headers=key), 401, "INVALID_CREDENTIALS"
    )


async def test_single_use_link_with_a_key_logs_in_once(stack: Stack) -> None:
    admin = await stack.admin()
    link = (await admin.post("/api/auth/links", json={})).json()["data"]["token"]
    key = {"Idempotency-Key": "same"}
    assert (await stack.client().post("/api/auth/login", json={"token": link}, headers=key)).status_code == 200
    envelope_error(
        await stack.client().post("/api/auth/login", json={"token": link}, headers=key), 401, "INVALID_TOKEN"
    )


async def test_right_password_after_failures_with_the_same_key_is_not_a_500(stack: Stack) -> None:
    c = stack.client()
    key = {"Idempotency-Key": "1"}
    for _ in range(2):
        r = await c.post("/api/auth/login", json={"password": "wrong"}, headers=key)
        envelope_error(r, 401, "INVALID_CREDENTIALS")
    # Today's code answered the right password with a 500 (the stored "failed" reply had no user).
    r = await c.post("/api/auth/login", json={"password": ADMIN_PASSWORD}, headers=key)
    assert r.status_code == 200, r.text
    envelope_error(await c.post("/api/auth/login", json={"password": "wrong"}, headers=key), 401, "INVALID_CREDENTIALS")


async def test_same_key_with_another_body_is_a_conflict(stack: Stack) -> None:
    c = await stack.admin()
    key = {"Idempotency-Key": "k-1"}
    r = await c.put("/api/group-admin/99/config", json={"enabled": False}, headers=key)
    assert r.status_code == 200, r.text
    # The same request again: the first result, nothing changed.
    r = await c.put("/api/group-admin/99/config", json={"enabled": False}, headers=key)
    assert r.status_code == 200 and r.json()["data"]["version"] == 1
    envelope_error(await c.put("/api/group-admin/99/config", json={"enabled": True}, headers=key), 409, "CONFLICT")
    view = (await c.get("/api/group-admin/99/config")).json()["data"]
    assert view["enabled"] is False and view["version"] == 1
    # A refused command with a key used before by another request gets the conflict, not the stored success.
    envelope_error(await c.put("/api/group-admin/99/config", json={"bogus": 1}, headers=key), 409, "CONFLICT")


# ---- 2. the login lockout ----


async def test_lockout_holds_for_names_that_do_not_exist(stack: Stack) -> None:
    c = stack.client()
    for _ in range(5):
        envelope_error(
            await c.post("/api/login", json={"username": "ghost", "password": "x"}), 401, "INVALID_CREDENTIALS"
        )
    # The same answer as for a real user: no way to tell which names exist.
    r = await c.post("/api/login", json={"username": "ghost", "password": "x"})
    envelope_error(r, 429, "RATE_LIMITED")
    assert int(r.headers["retry-after"]) > 0


async def test_concurrent_guesses_are_evaluated_at_most_five_times(stack: Stack) -> None:
    await stack.add_worker()  # guesses spread over two auth workers: the lock must hold across them
    c = stack.client()
    answers = await asyncio.gather(
        *(c.post("/api/auth/login", json={"username": "admin", "password": f"guess-{i}"}) for i in range(20))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * 5 + [429] * 15, statuses
    assert await login_failures(stack) == 5
    # Even the right password is refused now.
    envelope_error(await c.post("/api/auth/login", json={"password": ADMIN_PASSWORD}), 429, "RATE_LIMITED")


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(stack: Stack) -> None:
    c = stack.client()
    for i in range(5):
        r = await c.post(
            "/api/login",
            json={"username": "admin", "password": "nope"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        )
        envelope_error(r, 401, "INVALID_CREDENTIALS")
    r = await c.post(
        "/api/login",
        json={"username": "admin", "password": ADMIN_PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.200"},
    )
    envelope_error(r, 429, "RATE_LIMITED")


async def test_forwarded_for_from_a_trusted_proxy_counts(stack: Stack) -> None:
    await stack.add_edge(trusted_proxies=("127.0.0.1",))
    c = stack.client(1)
    bad = {"username": "admin", "password": "nope"}
    for _ in range(5):
        r = await c.post("/api/login", json=bad, headers={"X-Forwarded-For": "198.51.100.7"})
        envelope_error(r, 401, "INVALID_CREDENTIALS")
    envelope_error(
        await c.post("/api/login", json=bad, headers={"X-Forwarded-For": "198.51.100.7"}), 429, "RATE_LIMITED"
    )
    # Another client behind the same proxy is not locked out.
    good = {"username": "admin", "password": ADMIN_PASSWORD}
    assert (await c.post("/api/login", json=good, headers={"X-Forwarded-For": "198.51.100.8"})).status_code == 200


# ---- 3. sessions end ----


async def test_password_change_voids_older_tokens_and_links_on_every_edge(stack: Stack) -> None:
    await stack.add_edge()
    old = await stack.login()
    c = stack.client(token=old)
    permanent = (await c.post("/api/auth/links", json={"permanent": True})).json()["data"]["token"]
    r = await c.post("/api/auth/password", json={"oldPassword": ADMIN_PASSWORD, "newPassword": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    for edge in (0, 1):
        envelope_error(await stack.client(edge, token=old).get("/api/auth/verify"), 401, "INVALID_TOKEN")
        envelope_error(
            await stack.client(edge).post("/api/auth/login", json={"token": permanent}), 401, "INVALID_TOKEN"
        )
    r = await stack.client().get("/login/token", params={"token": permanent})
    envelope_error(r, 401, "INVALID_TOKEN")
    r = await stack.client(1).post("/api/auth/login", json={"password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    fresh = r.json()["data"]["token"]
    for edge in (0, 1):
        assert (await stack.client(edge, token=fresh).get("/api/auth/verify")).status_code == 200


async def test_login_links_are_listed_without_secrets_and_revoked(stack: Stack) -> None:
    c = await stack.admin()
    temporary = (await c.post("/api/auth/links", json={})).json()["data"]
    permanent = (await c.post("/api/auth/links", json={"permanent": True})).json()["data"]
    r = await c.get("/api/auth/links")
    assert r.status_code == 200, r.text
    listed = r.json()["data"]
    assert listed["total"] == 2
    by_id = {item["id"]: item for item in listed["items"]}
    assert set(by_id) == {temporary["id"], permanent["id"]}
    assert by_id[permanent["id"]]["permanent"] is True and by_id[temporary["id"]]["permanent"] is False
    for item in listed["items"]:
        assert set(item) == {"id", "createdAt", "permanent", "expiresAt"}
    assert permanent["token"] not in r.text

    r = await c.delete(f"/api/auth/links/{permanent['id']}")
    assert r.status_code == 200, r.text
    r = await stack.client().post("/api/auth/login", json={"token": permanent["token"]})
    envelope_error(r, 401, "INVALID_TOKEN")
    assert [i["id"] for i in (await c.get("/api/auth/links")).json()["data"]["items"]] == [temporary["id"]]
    envelope_error(await c.delete(f"/api/auth/links/{permanent['id']}"), 404, "NOT_FOUND")
    envelope_error(await c.delete("/api/auth/links/no-such-link"), 404, "NOT_FOUND")

    code = await issue_code_over_the_bus(stack, "31")
    group_token = (await stack.client().post("/api/group-admin/login", json={"code": code})).json()["data"]["token"]
    envelope_error(await stack.client(token=group_token).get("/api/auth/links"), 403, "FORBIDDEN")


def session_token(stack: Stack, *, auth_time: int) -> str:
    now = int(time.time())
    claims = {
        "sub": "admin",
        "jti": f"old-session-{auth_time}",
        "iat": now,
        "exp": now + 600,
        "iss": tokens.ISSUER,
        "aud": tokens.API_AUDIENCE,
        "scope": "admin",
        "auth_time": auth_time,
    }
    return jwt.encode(claims, stack.secret, algorithm="HS256")


async def test_refresh_has_an_absolute_lifetime(stack: Stack) -> None:
    max_age = 30 * 24 * 3600
    now = int(time.time())
    # Refreshed for a month: a token that is itself fresh cannot be refreshed again.
    too_old = session_token(stack, auth_time=now - max_age - 5)
    envelope_error(await stack.client(token=too_old).post("/api/auth/refresh"), 401, "TOKEN_EXPIRED")
    # Close to the limit: the new token keeps the session start and ends with it.
    started = now - max_age + 120
    r = await stack.client(token=session_token(stack, auth_time=started)).post("/api/auth/refresh")
    assert r.status_code == 200, r.text
    claims = tokens.decode(stack.secret, r.json()["data"]["token"])
    assert claims.auth_time == started and claims.exp <= started + max_age


async def test_concurrent_refreshes_of_one_token_yield_one_new_token(stack: Stack) -> None:
    c = stack.client(token=await stack.login())
    answers = await asyncio.gather(*(c.post("/api/auth/refresh") for _ in range(10)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [401] * 9, statuses
    for r in answers:
        if r.status_code == 401:
            assert r.json()["code"] == "INVALID_TOKEN"
