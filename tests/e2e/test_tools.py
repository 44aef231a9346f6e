"""Tools end to end (API.md §8): the registry view and its aliases, toggles, dangerous flags, test
calls through `cmd.tools.call`, policy refusals and the tool log."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import nats

from bus import subjects
from schemas.envelope import Actor, CommandEnvelope, CommandReply, command_encoder, reply_decoder
from tests.e2e.test_group_admin import issue_code_over_the_bus
from tests.e2e.test_presets import envelope_error
from tests.stack import Stack
from tests.waiting import wait_until


async def bus_call(stack: Stack, payload: dict[str, Any], command_id: uuid.UUID | None = None) -> CommandReply:
    """`cmd.tools.call` as the chat engine (or any outside caller) sends it."""
    nc = await nats.connect(stack.nats_url)
    try:
        envelope = CommandEnvelope(
            command_id=command_id or uuid.uuid4(),
            type="tools.call",
            actor=Actor(payload.get("caller", {}).get("subject", "x"), payload.get("caller", {}).get("scope", "admin")),
            payload=payload,
        )
        msg = await nc.request(subjects.command("tools", "call"), command_encoder.encode(envelope), timeout=10)
    finally:
        await nc.close()
    return reply_decoder.decode(msg.data)


async def logs_of(c: Any, tool: str, expected: int) -> list[dict[str, Any]]:
    """The tool log (a projection written in the call's transaction), polled briefly all the same."""

    async def logged() -> list[dict[str, Any]] | None:
        data = (await c.get("/api/tools/logs", params={"toolName": tool})).json()["data"]
        return list(data["items"]) if data["total"] >= expected else None

    return await wait_until(logged, message=f"{expected} log entries of {tool}")


async def test_registry_view_and_aliases(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.get("/api/tools")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    names = {t["name"] for t in data["items"]}
    assert {"get_current_time", "calculate", "search_history", "roll_dice"} <= names
    assert data["total"] == len(data["items"]) and data["page"] == 1
    assert data["categories"]["basic"]["toolCount"] >= 2 and data["categories"]["basic"]["enabled"] is True
    calc = next(t for t in data["items"] if t["name"] == "calculate")
    assert calc["source"] == "builtin" and calc["isBuiltin"] is True and calc["enabled"] is True
    assert calc["inputSchema"]["required"] == ["expression"] and calc["dangerous"] is False
    bare = (await c.get("/api/tools/list")).json()["data"]
    assert isinstance(bare, list) and {t["name"] for t in bare} == names
    assert (await c.get("/api/tools/roll_dice")).json()["data"]["category"] == "entertainment"
    envelope_error(await c.get("/api/tools/nope"), 404, "TOOL_NOT_FOUND")
    envelope_error(await c.post("/api/tools/nope/toggle", json={"enabled": False}), 404, "TOOL_NOT_FOUND")


async def test_call_test_and_logs(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post("/api/tools/call", json={"name": "calculate", "args": {"expression": "(2 + 3) * 4 ** 2"}})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["success"] is True and data["result"]["result"] == 80 and data["toolName"] == "calculate"
    assert data["arguments"] == {"expression": "(2 + 3) * 4 ** 2"} and data["duration"] >= 0

    r = await c.post("/api/tools/test", json={"toolName": "roll_dice", "arguments": {"sides": 20, "count": 3}})
    rolls = r.json()["data"]["result"]["rolls"]
    assert len(rolls) == 3 and all(1 <= x <= 20 for x in rolls)
    r = await c.post("/api/tools/test", json={"toolName": "roll_dice", "arguments": {"sides": 10**9}})
    assert r.status_code == 200 and r.json()["data"]["success"] is False
    assert "between" in r.json()["data"]["error"]

    r = await c.post("/api/tools/test", json={"toolName": "get_current_time", "arguments": {"timezone": "Asia/Tokyo"}})
    assert r.json()["data"]["result"]["timezone"] == "Asia/Tokyo"

    logs = await logs_of(c, "calculate", 1)
    assert logs[0]["args"] == {"expression": "(2 + 3) * 4 ** 2"} and logs[0]["success"] is True
    assert logs[0]["request"] == logs[0]["args"] and logs[0]["response"] == logs[0]["result"]
    all_logs = (await c.get("/api/tools/logs", params={"limit": 2})).json()["data"]
    assert all_logs["total"] == 4 and len(all_logs["logs"]) == 2 and all_logs["items"] == all_logs["logs"]
    failed = (await c.get("/api/tools/logs", params={"success": "false"})).json()["data"]
    assert [i["toolName"] for i in failed["items"]] == ["roll_dice"]


async def test_calculate_refuses_code_and_huge_powers(stack: Stack) -> None:
    c = await stack.admin()
    for expression, why in (
        ("__import__('os')", "not allowed"),
        ("2**99999999", "too large"),
        ("9**9**9", "too large"),
    ):
        r = await c.post("/api/tools/call", json={"name": "calculate", "args": {"expression": expression}})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["success"] is False and why in data["error"] and "Traceback" not in data["error"]


async def test_toggles_and_disabled_tool(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post("/api/tools/calculate/toggle", json={"enabled": False})
    assert r.status_code == 200 and r.json()["data"] == {"name": "calculate", "enabled": False}
    assert (await c.get("/api/tools/calculate")).json()["data"]["enabled"] is False
    envelope_error(
        await c.post("/api/tools/call", json={"name": "calculate", "args": {"expression": "1+1"}}), 403, "TOOL_DISABLED"
    )
    # ChatAI's panel: POST toggle without a body flips; the builtin alias takes {toolName, enabled}.
    assert (await c.post("/api/tools/calculate/toggle")).json()["data"]["enabled"] is True
    r = await c.post("/api/tools/builtin/tool/toggle", json={"toolName": "calculate", "enabled": False})
    assert r.json()["data"]["enabled"] is False
    assert (await c.put("/api/tools/calculate/toggle", json={"enabled": True})).json()["data"]["enabled"] is True

    # Per category, both spellings.
    r = await c.put("/api/tools/category/entertainment/toggle", json={"enabled": False})
    assert r.json()["data"] == {"category": "entertainment", "enabled": False}
    assert (await c.get("/api/tools")).json()["data"]["categories"]["entertainment"]["enabled"] is False
    envelope_error(await c.post("/api/tools/test", json={"toolName": "roll_dice"}), 403, "TOOL_DISABLED")
    r = await c.post("/api/tools/builtin/category/toggle", json={"category": "entertainment", "enabled": True})
    assert r.json()["data"]["enabled"] is True
    assert (await c.post("/api/tools/test", json={"toolName": "roll_dice"})).json()["data"]["success"] is True
    # Refusals run nothing and log nothing.
    assert (await c.get("/api/tools/logs", params={"tool": "calculate"})).json()["data"]["total"] == 0


async def test_dangerous_tool_refused_for_a_group_caller(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post("/api/tools/dangerous/toggle", json={"toolName": "roll_dice", "isDangerous": True})
    assert r.status_code == 200, r.text
    assert (await c.get("/api/tools/dangerous")).json()["data"] == {"tools": ["roll_dice"], "allowDangerous": False}
    call = {"name": "roll_dice", "arguments": {}, "groupId": None}
    group_caller = {"subject": "group-admin", "scope": "group:777"}
    refused = await bus_call(stack, {**call, "caller": group_caller, "group_id": "777"})
    assert not refused.ok and refused.error is not None
    assert (refused.error.code, refused.error.status) == ("FORBIDDEN", 403)
    admin_call = await bus_call(stack, {**call, "caller": {"subject": "admin", "scope": "admin"}})
    assert admin_call.ok and admin_call.result["success"] is True

    # The whole list at once (ChatAI's PUT), and the global switch in the config.
    r = await c.put("/api/tools/dangerous", json={"tools": ["calculate"], "allowDangerous": True})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"tools": ["calculate"], "allowDangerous": True}
    assert (await c.get("/api/config")).json()["data"]["config"]["tools"]["allowDangerous"] is True


async def test_tool_routes_are_admin_only(stack: Stack) -> None:
    await stack.admin()
    code = await issue_code_over_the_bus(stack, "888")
    r = await stack.client().post("/api/group-admin/login", json={"code": code})
    group = stack.client(token=r.json()["data"]["token"])
    for method, path, body in (
        ("GET", "/api/tools", None),
        ("GET", "/api/tools/list", None),
        ("POST", "/api/tools/test", {"toolName": "calculate", "arguments": {"expression": "1"}}),
        ("POST", "/api/tools/calculate/toggle", {"enabled": False}),
        ("PUT", "/api/tools/dangerous", {"tools": []}),
        ("GET", "/api/tools/logs", None),
    ):
        envelope_error(await group.request(method, path, json=body), 403, "FORBIDDEN")
    envelope_error(await stack.client().get("/api/tools"), 401, "AUTH_REQUIRED")


async def test_retried_call_runs_once(stack: Stack) -> None:
    c = await stack.admin()
    command_id = uuid.uuid4()
    payload = {"name": "roll_dice", "arguments": {"sides": 1000, "count": 5}, "caller": {"subject": "a"}}
    first = await bus_call(stack, payload, command_id)
    again = await bus_call(stack, payload, command_id)
    assert first.ok and again.ok and first.result == again.result
    assert len(await logs_of(c, "roll_dice", 1)) == 1
    # The HTTP route: the same Idempotency-Key returns the first result.
    headers = {"Idempotency-Key": "k-1"}
    body = {"name": "roll_dice", "args": {"sides": 1000, "count": 5}}
    one = (await c.post("/api/tools/call", json=body, headers=headers)).json()["data"]
    two = (await c.post("/api/tools/call", json=body, headers=headers)).json()["data"]
    assert one == two
    assert (await c.get("/api/tools/logs", params={"toolName": "roll_dice"})).json()["data"]["total"] == 2


async def test_two_tools_workers_serve_calls(stack: Stack) -> None:
    from chatbus.runtime import start_workers

    c = await stack.admin()
    extra = await start_workers(stack.nats_url, stack.dsn, domains=["tools"], pool_size=3)
    stack.workers.append(extra)  # stopped with the stack
    n = 40
    replies = await asyncio.gather(
        *(c.post("/api/tools/call", json={"name": "calculate", "args": {"expression": f"{i} + 1"}}) for i in range(n))
    )
    assert sorted(r.json()["data"]["result"]["result"] for r in replies) == list(range(1, n + 1))
    served = [rt.handled for w in stack.workers for rt in w.runtimes if rt.domain == "tools"]
    assert len(served) == 2 and all(count > 0 for count in served), served
    assert len(await logs_of(c, "calculate", n)) == 20  # one page; the total is checked by logs_of
    # One worker gone: the other serves every call.
    await extra.stop()
    stack.workers.remove(extra)
    r = await c.post("/api/tools/call", json={"name": "calculate", "args": {"expression": "2 ** 10"}})
    assert r.json()["data"]["result"]["result"] == 1024
