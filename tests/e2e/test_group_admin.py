"""Group admin: per-group config with inherited defaults, and group-scoped tokens from bus-issued codes."""

from __future__ import annotations

import time
import uuid

import nats
import pytest

from bus import subjects
from schemas.envelope import Actor, CommandEnvelope, command_encoder, reply_decoder
from services.group_admin import domain
from services.group_admin import handlers as group_handlers
from tests.e2e.test_presets import envelope_error
from tests.fakes.clock import FakeClock
from tests.stack import Stack


async def issue_code_over_the_bus(stack: Stack, group_id: str) -> str:
    """What the chat side does on `#群管理面板`: a plain NATS request to cmd.group_admin.issue_code."""
    nc = await nats.connect(stack.nats_url)
    try:
        envelope = CommandEnvelope(
            command_id=uuid.uuid4(),
            type="group_admin.issue_code",
            actor=Actor("qq:10001", "platform"),
            payload={"group_id": group_id, "issued_by": "qq:10001"},
        )
        msg = await nc.request(
            subjects.command("group_admin", "issue_code"), command_encoder.encode(envelope), timeout=5
        )
    finally:
        await nc.close()
    reply = reply_decoder.decode(msg.data)
    assert reply.ok, reply.error
    code = reply.result["code"]
    assert len(code) == 6 and code.isalnum() and reply.result["groupId"] == group_id
    return str(code)


async def test_group_config_inherits_and_overrides(stack: Stack) -> None:
    c = await stack.admin()
    await c.put("/api/config", json={"trigger": {"group": {"prefixes": ["#ai"]}}, "llm": {"defaultModel": "m-1"}})
    r = await c.get("/api/group-admin/123456/config")
    assert r.status_code == 200, r.text
    view = r.json()["data"]
    assert view["groupId"] == "123456" and view["version"] == 0 and view["overrides"] == {}
    assert view["model"] == "m-1" and view["trigger"]["prefixes"] == ["#ai"] and view["presetId"] == "default"

    r = await c.put(
        "/api/group-admin/123456/config",
        json={"model": "m-2", "trigger": {"at": False}, "usageLimit": {"perUserPerDay": 30}},
    )
    assert r.status_code == 200, r.text
    view = r.json()["data"]
    assert view["model"] == "m-2" and view["trigger"] == {
        "at": False,
        "prefixes": ["#ai"],
        "keywords": [],
        "randomRate": 0.0,
    }
    assert view["usageLimit"] == {"perUserPerDay": 30, "perGroupPerDay": 0} and view["version"] == 1
    assert "model" not in view["inherited"] and "presetId" in view["inherited"]
    # A later global change still reaches what the group did not override.
    await c.put("/api/config", json={"trigger": {"group": {"prefixes": ["!"]}}, "llm": {"defaultModel": "m-3"}})
    view = (await c.get("/api/group-admin/123456/config")).json()["data"]
    assert view["trigger"]["prefixes"] == ["!"] and view["model"] == "m-2"

    groups = (await c.get("/api/group-admin/groups")).json()["data"]
    assert [g["groupId"] for g in groups["items"]] == ["123456"] and groups["total"] == 1

    r = await c.delete("/api/group-admin/123456/config")
    assert r.status_code == 200 and r.json()["data"]["overrides"] == {} and r.json()["data"]["model"] == "m-3"
    envelope_error(await c.delete("/api/group-admin/123456/config"), 404, "NOT_FOUND")


async def test_group_config_bad_input(stack: Stack) -> None:
    c = await stack.admin()
    for body, code in [
        ({"bogus": 1}, "INVALID_CONFIG"),
        ({"trigger": {"randomRate": 5}}, "INVALID_CONFIG"),
        ({"usageLimit": {"perUserPerDay": -1}}, "INVALID_CONFIG"),
        ({}, "INVALID_CONFIG"),
        ({"enabled": "yes"}, "INVALID_CONFIG"),
    ]:
        envelope_error(await c.put("/api/group-admin/777/config", json=body), 400, code)
    envelope_error(await c.put("/api/group-admin/777/config", json=[1]), 400, "VALIDATION_ERROR")
    envelope_error(
        await c.put("/api/group-admin/777/config", content=b"{x", headers={"content-type": "application/json"}),
        400,
        "PARSE_ERROR",
    )
    envelope_error(await c.get("/api/group-admin/bad%20id/config"), 400, "VALIDATION_ERROR")
    await c.put("/api/group-admin/777/config", json={"enabled": False})
    envelope_error(
        await c.put("/api/group-admin/777/config", json={"enabled": True}, headers={"If-Match": "0"}),
        409,
        "VERSION_CONFLICT",
    )


async def test_code_login_gives_a_token_for_one_group_only(stack: Stack) -> None:
    admin = await stack.admin()
    code = await issue_code_over_the_bus(stack, "555")
    anon = stack.client()
    r = await anon.post("/api/group-admin/login", json={"code": code.lower()})  # case does not matter
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["groupId"] == "555" and data["scope"] == "group:555"
    group = stack.client(token=data["token"])

    # Single use.
    envelope_error(await anon.post("/api/group-admin/login", json={"code": code}), 401, "INVALID_CREDENTIALS")
    envelope_error(await anon.post("/api/group-admin/login", json={"code": "ZZZZZZ"}), 401, "INVALID_CREDENTIALS")
    envelope_error(await anon.post("/api/group-admin/login", json={"code": "abc"}), 400, "VALIDATION_ERROR")

    # Its own group: read and write.
    assert (await group.get("/api/group-admin/555/config")).status_code == 200
    r = await group.put("/api/group-admin/555/config", json={"presetId": "catgirl"})
    assert r.status_code == 200 and r.json()["data"]["presetId"] == "catgirl"
    assert [g["groupId"] for g in (await group.get("/api/group-admin/groups")).json()["data"]["items"]] == ["555"]
    # Nothing else.
    await admin.put("/api/group-admin/666/config", json={"enabled": False})
    envelope_error(await group.get("/api/group-admin/666/config"), 403, "FORBIDDEN")
    envelope_error(await group.put("/api/group-admin/666/config", json={"enabled": True}), 403, "FORBIDDEN")
    envelope_error(await group.get("/api/presets"), 403, "FORBIDDEN")
    envelope_error(await group.get("/api/config"), 403, "FORBIDDEN")
    envelope_error(
        await group.post("/api/auth/password", json={"oldPassword": "x", "newPassword": "yyyyyyyy"}), 403, "FORBIDDEN"
    )
    assert (await admin.get("/api/group-admin/666/config")).json()["data"]["enabled"] is False


async def test_expired_code_is_refused(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # The workers run in this process, on a clock the test moves past the code's ten minutes.
    clock = FakeClock(time.time())
    monkeypatch.setattr(group_handlers, "clock", clock)
    expired = await issue_code_over_the_bus(stack, "888")
    fresh = await issue_code_over_the_bus(stack, "888")
    clock.advance(domain.CODE_TTL_SECONDS - 1)
    assert (await stack.client().post("/api/group-admin/login", json={"code": fresh})).status_code == 200
    clock.advance(1)
    envelope_error(
        await stack.client().post("/api/group-admin/login", json={"code": expired}), 401, "INVALID_CREDENTIALS"
    )
