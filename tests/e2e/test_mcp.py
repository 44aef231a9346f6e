"""MCP servers and skills end to end (API.md §8): real MCP server processes (tests/fakes/mcp_server.py)
over stdio and streamable HTTP, added through the API, run by every tools worker, called through
`/api/tools/call`, `/api/skills/execute` and a chat turn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.test_chat import add_channel
from tests.e2e.test_group_admin import issue_code_over_the_bus
from tests.e2e.test_presets import envelope_error
from tests.e2e.test_tools import logs_of
from tests.fakes.llm import FakeProvider
from tests.fakes.mcp_harness import ALLOW, MODULE, REPO, HttpServer
from tests.stack import Stack
from tests.waiting import wait_until

ENV_SECRET = "sk-env-secret-value-98765"
HEADER_SECRET = "Bearer header-secret-token-4321"


@pytest.fixture(autouse=True)
def allow_fake_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the operator would set: the fake server's argv is allowed, nothing else."""
    monkeypatch.setenv("CHATBUS_MCP_STDIO_ALLOW", ALLOW)


def stdio_body(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "command": "python", "args": ["-m", MODULE, "stdio", "0", name], "cwd": REPO, **extra}


async def server_until(
    c: httpx.AsyncClient, name: str, cond: Callable[[dict[str, Any]], bool], timeout: float = 40
) -> dict[str, Any]:
    """Poll the server's read until `cond` holds (bounded); a timeout reports the last read."""
    last: dict[str, Any] = {}

    async def holds() -> dict[str, Any] | None:
        nonlocal last
        r = await c.get(f"/api/mcp/servers/{name}")
        last = r.json().get("data") or {}
        return dict(last) if r.status_code == 200 and cond(last) else None

    return await wait_until(holds, timeout=timeout, interval=0.1, message=f"server {name}", state=lambda: last)


def connected(count: int = 1) -> Callable[[dict[str, Any]], bool]:
    def check(s: dict[str, Any]) -> bool:
        live = [i for i in s["instances"] if i["status"] == "connected"]
        return s["status"] == "connected" and s["toolsCount"] > 0 and len(live) >= count

    return check


async def tools_until(c: httpx.AsyncClient, name: str, wanted: str, timeout: float = 30) -> list[str]:
    async def listed() -> list[str] | None:
        names = [t["name"] for t in (await c.get(f"/api/mcp/servers/{name}/tools")).json()["data"]["tools"]]
        return names if wanted in names else None

    return await wait_until(listed, timeout=timeout, interval=0.1, message=f"tool {wanted} of {name}")


async def call(c: httpx.AsyncClient, name: str, args: dict[str, Any]) -> dict[str, Any]:
    r = await c.post("/api/tools/call", json={"name": name, "args": args})
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


async def test_stdio_server_through_the_api(stack: Stack, database: str) -> None:
    c = await stack.admin()
    r = await c.post("/api/mcp/servers", json=stdio_body("fake", env={"FAKE_TOKEN": ENV_SECRET}))
    assert r.status_code == 201, r.text
    assert r.json()["data"]["env"]["FAKE_TOKEN"] != ENV_SECRET and "****" in r.json()["data"]["env"]["FAKE_TOKEN"]
    server = await server_until(c, "fake", connected())
    assert server["type"] == "stdio" and server["toolCount"] == server["toolsCount"] >= 5
    assert server["instances"][0]["instanceId"] and server["connectedAt"]
    listed = (await c.get("/api/mcp/servers")).json()["data"]
    assert listed["total"] == 1 and listed["items"] == listed["servers"] and listed["items"][0]["name"] == "fake"
    assert "fake__echo" in await tools_until(c, "fake", "fake__echo")
    # The secret is sealed in the event log and the read table, never plaintext.
    conn = await asyncpg.connect(database)
    try:
        stored = " ".join(r["data"] for r in await conn.fetch("SELECT data::text AS data FROM events"))
        table = " ".join(r["c"] for r in await conn.fetch("SELECT config::text AS c FROM mcp_servers"))
    finally:
        await conn.close()
    assert ENV_SECRET not in stored and ENV_SECRET not in table and "$enc:v1:" in table

    done = await call(c, "fake__echo", {"text": "hello over stdio"})
    assert done["success"] is True and done["result"] == "hello over stdio"
    failed = await call(c, "fake__fail", {})
    assert failed["success"] is False and "tool fail" in failed["error"]
    assert (await logs_of(c, "fake__echo", 1))[0]["source"] == "mcp"

    # notifications/tools/list_changed: a tool the server adds at run time shows up.
    assert (await call(c, "fake__grow", {"tool": "sprout"}))["success"] is True
    await tools_until(c, "fake", "fake__sprout")
    assert (await call(c, "fake__sprout", {}))["result"] == "grown:sprout"

    # Disconnect, connect, a PUT of what was read (masked env: unchanged), disable, delete.
    r = await c.post("/api/mcp/servers/fake/disconnect")
    assert r.status_code == 200, r.text
    await server_until(c, "fake", lambda s: s["status"] == "disconnected")
    assert (await c.post("/api/mcp/connect", json={"name": "fake"})).status_code == 200
    await server_until(c, "fake", connected())
    read = (await c.get("/api/mcp/servers/fake")).json()["data"]
    r = await c.put("/api/mcp/servers/fake", json=read)
    assert r.status_code == 200 and r.json()["data"]["env"] == read["env"], r.text
    assert (await call(c, "fake__echo", {"text": "still"}))["result"] == "still"
    r = await c.put("/api/mcp/servers/fake", json={"enabled": False})
    assert r.status_code == 200 and r.json()["data"]["enabled"] is False, r.text
    await server_until(c, "fake", lambda s: s["status"] == "disconnected")
    assert (await c.delete("/api/mcp/servers/fake")).status_code == 200
    envelope_error(await c.get("/api/mcp/servers/fake"), 404, "SERVER_NOT_FOUND")
    envelope_error(await c.post("/api/mcp/servers/fake/connect"), 404, "SERVER_NOT_FOUND")


async def test_http_server_restart_and_same_tool_names(stack: Stack) -> None:
    c = await stack.admin()
    web = HttpServer("http", "web")
    await web.start()
    try:
        nested = {
            "name": "web",
            "config": {"type": "streamable-http", "url": f"http://127.0.0.1:{web.port}/mcp", "timeout": 20000},
        }
        nested["config"]["headers"] = {"Authorization": HEADER_SECRET}
        r = await c.post("/api/mcp/servers", json=nested)
        assert r.status_code == 201, r.text
        assert r.json()["data"]["type"] == "http" and r.json()["data"]["timeout"] == 20
        assert HEADER_SECRET not in r.text
        assert (await c.post("/api/mcp/servers", json=stdio_body("local"))).status_code == 201
        await server_until(c, "web", connected())
        await server_until(c, "local", connected())
        await tools_until(c, "web", "web__whoami")
        await tools_until(c, "local", "local__whoami")
        # Two servers with the same tool name: each answers under its own name.
        assert (await call(c, "web__whoami", {}))["result"] == "web"
        assert (await call(c, "local__whoami", {}))["result"] == "local"
        assert HEADER_SECRET not in (await c.get("/api/mcp/servers")).text

        web.kill()
        await server_until(c, "web", lambda s: s["status"] != "connected")
        await web.start()
        await server_until(c, "web", connected())
        assert (await call(c, "web__echo", {"text": "back"}))["result"] == "back"
    finally:
        web.kill()


async def test_refusals_and_admin_only(stack: Stack) -> None:
    c = await stack.admin()
    for body in (
        {"name": "evil", "command": "python", "args": ["-c", "print(1)"]},
        {"name": "evil", "command": "bash", "args": ["-c", "id"]},
        {"name": "evil", "config": {"type": "npm", "package": "left-pad"}},
    ):
        envelope_error(await c.post("/api/mcp/servers", json=body), 400, "INVALID_ARGS")
    envelope_error(await c.get("/api/mcp/servers/evil"), 404, "SERVER_NOT_FOUND")
    envelope_error(await c.post("/api/mcp/servers", json={"name": "x", "type": "sse"}), 400, "INVALID_ARGS")
    assert (await c.post("/api/mcp/servers", json=stdio_body("twice"))).status_code == 201
    envelope_error(await c.post("/api/mcp/servers", json=stdio_body("twice")), 409, "CONFLICT")

    code = await issue_code_over_the_bus(stack, "777")
    r = await stack.client().post("/api/group-admin/login", json={"code": code})
    group = stack.client(token=r.json()["data"]["token"])
    for method, path, body in (
        ("GET", "/api/mcp/servers", None),
        ("POST", "/api/mcp/servers", stdio_body("g")),
        ("DELETE", "/api/mcp/servers/twice", None),
        ("POST", "/api/mcp/import", {"mcpServers": {}}),
        ("GET", "/api/skills/status", None),
        ("POST", "/api/skills/execute", {"toolName": "calculate", "args": {"expression": "1"}}),
    ):
        envelope_error(await group.request(method, path, json=body), 403, "FORBIDDEN")


async def test_claude_desktop_import(stack: Stack) -> None:
    c = await stack.admin()
    document = {
        "mcpServers": {
            "one": {"command": "python", "args": ["-m", MODULE, "stdio", "0", "one"], "cwd": REPO},
            "two": {"url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "abcdefghijkl"}, "disabled": True},
            "bad": {"command": "sh", "args": ["-c", "id"]},
        }
    }
    r = await c.post("/api/mcp/import", json=document)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["success"], data["failed"], data["total"]) == (2, 1, 3)
    assert data["errors"][0]["name"] == "bad"
    names = {s["name"]: s for s in (await c.get("/api/mcp/servers")).json()["data"]["items"]}
    assert set(names) == {"one", "two"} and names["two"]["enabled"] is False
    assert names["two"]["headers"]["X-Key"] != "abcdefghijkl"
    await server_until(c, "one", connected())


async def test_chat_turn_and_skills(stack: Stack) -> None:
    c = await stack.admin()
    assert (await c.post("/api/mcp/servers", json=stdio_body("fake"))).status_code == 201
    await server_until(c, "fake", connected())
    await tools_until(c, "fake", "fake__echo")

    status = (await c.get("/api/skills/status")).json()["data"]
    assert status["servers"][0]["name"] == "fake" and status["servers"][0]["status"] == "connected"
    assert status["stats"]["totalTools"] >= 9 and any(k["key"] == "mcp" for k in status["categories"])
    found = (await c.get("/api/skills/tools", params={"source": "mcp", "search": "echo"})).json()["data"]
    assert found["count"] == 1 and found["tools"][0]["name"] == "fake__echo"
    assert (await c.get("/api/skills/search", params={"q": "whoami"})).json()["data"]["count"] == 1

    async with c.stream("GET", "/api/skills/sse") as stream:
        lines = stream.aiter_lines()
        assert (await anext(lines)).startswith("retry")
        r = await c.post("/api/skills/execute", json={"toolName": "fake__echo", "args": {"text": "via skills"}})
        assert r.status_code == 200 and r.json()["data"]["result"] == "via skills", r.text
        async with asyncio.timeout(20):
            async for line in lines:
                if line == "event: tool-executed":
                    data = await anext(lines)
                    assert '"toolName":"fake__echo"' in data and '"success":true' in data
                    break

    r = await c.post("/api/skills/toggle-tool", json={"toolName": "fake__echo", "enabled": False})
    assert r.status_code == 200 and r.json()["data"]["enabled"] is False
    envelope_error(await c.post("/api/tools/call", json={"name": "fake__echo", "args": {}}), 403, "TOOL_DISABLED")
    assert (await c.post("/api/skills/tools/fake__echo/toggle", json={"enabled": True})).status_code == 200
    assert (await c.post("/api/skills/reload")).status_code == 200

    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "p")
        r = await c.post("/api/chat", json={"message": 'echo it <<tool:fake__echo {"text": "from the model"}>>'})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        [done] = data["toolCalls"]
        assert done["name"] == "fake__echo" and done["success"] is True and done["result"] == "from the model"
        assert "from the model" in data["response"]


async def test_two_tools_workers_report_each_instance(stack: Stack) -> None:
    await stack.add_worker()
    c = await stack.admin()
    assert (await c.post("/api/mcp/servers", json=stdio_body("fake"))).status_code == 201
    server = await server_until(c, "fake", connected(2))
    assert len({i["instanceId"] for i in server["instances"]}) == 2
    for text in ("a", "b", "c", "d"):
        assert (await call(c, "fake__echo", {"text": text}))["result"] == text
    # A stopped worker leaves the instances (it says so as it stops).
    await stack.workers.pop().stop()
    await server_until(c, "fake", lambda s: len(s["instances"]) == 1)
