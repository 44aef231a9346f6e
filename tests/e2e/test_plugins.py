"""Plugins end to end: uploads checked at a real edge, plugins run as MCP stdio servers by the tools
workers, their commands answered through the fake NapCat."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.test_group_admin import issue_code_over_the_bus
from tests.fakes.napcat import FakeNapCat
from tests.fakes.plugins import example_zip, misbehaving_zip, upload, zip_files
from tests.stack import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.usefixtures("plugin_dir")  # tests/plugin_fixtures.py


async def plugin(c: httpx.AsyncClient, name: str) -> dict[str, Any]:
    r = await c.get("/api/plugins/list")
    assert r.status_code == 200, r.text
    return dict(r.json()["data"][name])


async def running(c: httpx.AsyncClient, name: str, **expect: Any) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        p = await plugin(c, name)
        ok = p["status"] == "running" and p["tools"] and all(p.get(k) == v for k, v in expect.items())
        return p if ok else None

    found: dict[str, Any] = await wait_until(check, timeout=30, message=f"plugin {name} running")
    return found


async def install(c: httpx.AsyncClient, data: bytes, name: str) -> dict[str, Any]:
    r = await upload(c, data)
    assert r.status_code == 201, r.text
    assert (await c.post("/api/plugins/enable", json={"name": name})).status_code == 200
    return await running(c, name)


async def ask(bot: FakeNapCat, text: str, *, group: bool = False, role: str = "member", user: str = "555") -> str:
    before = len(bot.sent())
    if group:
        await bot.group("777", user, text, role=role)
    else:
        await bot.private(user, text)
    await bot.wait_sent(before + 1, timeout=30)
    return bot.texts()[before]


async def test_upload_enable_command_config_and_reload(stack: Stack, bot: FakeNapCat) -> None:
    c = await stack.admin()
    r = await upload(c, example_zip())
    assert r.status_code == 201, r.text
    view = r.json()["data"]
    assert view["name"] == "echo-weather" and view["enabled"] is False and view["status"] == "stopped"
    assert view["commands"] == ["weather", "echo"] and len(view["digest"]) == 64
    assert (await upload(c, example_zip())).status_code == 409  # installed: overwrite is explicit
    assert (await c.post("/api/plugins/enable", json={"name": "echo-weather"})).status_code == 200
    p = await running(c, "echo-weather")
    assert sorted(p["tools"]) == ["echo-weather__echo", "echo-weather__weather"]
    page = (await c.get("/api/plugins")).json()["data"]
    assert [i["name"] for i in page["items"]] == ["echo-weather"]

    # a command through the fake NapCat: `#weather Paris` runs the plugin's tool
    assert (await ask(bot, "#weather Paris")).startswith("Paris: ")
    assert (await ask(bot, "#天气 Paris")).startswith("Paris: ")
    # `echo` is for admins: a group member is refused, a group admin is answered
    assert "只有" in await ask(bot, "#echo hi", group=True)
    assert await ask(bot, "#echo hi", group=True, role="admin") == "hi"

    # config: validated against the manifest's schema (400 with the path), then the plugin restarts
    r = await c.get("/api/plugins/config", params={"name": "echo-weather"})
    assert r.json()["data"]["config"] == {} and r.json()["data"]["schema"]["properties"]["unit"]["enum"] == ["C", "F"]
    r = await c.put("/api/plugins/config", json={"name": "echo-weather", "config": {"unit": "K"}})
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "config.unit", r.text
    r = await c.post("/api/plugins/config", json={"name": "echo-weather", "config": {"unit": "F", "greeting": "Hi "}})
    assert r.status_code == 200, r.text

    async def greets() -> bool:
        return (await ask(bot, "#weather Paris")).startswith("Hi Paris: ")

    await wait_until(greets, timeout=30, message="the plugin answers with its new config")

    # a new version, then a reload: the new process answers
    r = await upload(c, example_zip(version="2.0.0"), overwrite=True)
    assert r.status_code == 201 and r.json()["data"]["version"] == "2.0.0", r.text
    await running(c, "echo-weather", version="2.0.0", digest=r.json()["data"]["digest"])
    assert (await c.post("/api/plugins/reload", json={"name": "echo-weather"})).status_code == 200
    assert (await ask(bot, "#weather Rome")).startswith("Hi Rome: ")

    # disable, delete (both aliases)
    assert (await c.post("/api/plugins/disable", json={"name": "echo-weather"})).json()["data"]["status"] == "stopped"
    assert (await c.delete("/api/plugins/delete", params={"name": "echo-weather"})).status_code == 200
    assert (await c.post("/api/plugins/delete", json={"name": "echo-weather"})).status_code == 404


async def test_plugin_process_has_no_secrets_and_limits(stack: Stack, bot: FakeNapCat) -> None:
    c = await stack.admin()
    await install(c, misbehaving_zip(), "bad")
    seen = json.loads(await ask(bot, "#env"))
    assert seen["keys"] == ["CHATBUS_PLUGIN_CONFIG"]  # no CHATBUS_* secret, no database or NATS address
    assert seen["home"] == seen["cwd"] and seen["home"].endswith(seen["home"].rsplit("/", 1)[-1])
    assert all(limit > 0 for limit in seen["limits"])  # CPU seconds, address space, open files set
    # a tool that hangs: the call ends with a timeout error, the plugin keeps serving
    assert "timed out" in await ask(bot, "#hang")
    assert json.loads(await ask(bot, "#env"))["keys"] == ["CHATBUS_PLUGIN_CONFIG"]


async def test_crashing_plugin_shows_error_without_trace(stack: Stack) -> None:
    c = await stack.admin()
    r = await upload(c, misbehaving_zip("crashy"))
    assert r.status_code == 201, r.text
    r = await c.post("/api/plugins/config", json={"name": "crashy", "config": {"crash": True}})
    assert r.status_code == 200, r.text
    assert (await c.post("/api/plugins/enable", json={"name": "crashy"})).status_code == 200

    async def errored() -> dict[str, Any] | None:
        p = await plugin(c, "crashy")
        return p if p["status"] == "error" else None

    p = await wait_until(errored, timeout=30, message="the crashing plugin shows an error")
    assert p["error"] and "Traceback" not in p["error"] and "\n" not in p["error"]


@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (zip_files({"chatbus-plugin.json": "{}", "../evil.py": "x"}), "`..`"),
        (zip_files({"chatbus-plugin.json": "{}", "/etc/evil": "x"}), "absolute"),
        (zip_files({"chatbus-plugin.json": "{}"}, links={"link": "/etc/passwd"}), "link"),
        (zip_files({"server.py": "x"}), "chatbus-plugin.json"),
        (zip_files({"chatbus-plugin.json": json.dumps({"name": "x", "version": "1"})}), "entry"),
        (zip_files({"chatbus-plugin.json": "not json"}), "JSON"),
        (b"not a zip at all", "zip"),
    ],
)
async def test_bad_archives_are_refused(stack: Stack, archive: bytes, reason: str) -> None:
    r = await upload(await stack.admin(), archive)
    assert r.status_code == 400, r.text
    assert reason in r.json()["message"]


async def test_oversized_and_unauthorised_uploads_are_refused(stack: Stack) -> None:
    c = await stack.admin()
    big = zip_files({"chatbus-plugin.json": "{}", "blob.bin": b"\0" * 10}) + b"\0" * (3 * 1024 * 1024)
    assert (await upload(c, big)).status_code == 413
    bomb = zip_files({"chatbus-plugin.json": "{}", **{f"f{i}": b"" for i in range(600)}})
    assert "entries" in (await upload(c, bomb)).json()["message"]
    assert (await upload(stack.client(), example_zip())).status_code == 401
    for path in ("/api/plugins", "/api/plugins/list", "/api/commands", "/api/plugins/config?name=x"):
        assert (await stack.client().get(path)).status_code == 401
    assert (await stack.client().post("/api/plugins/delete", json={"name": "x"})).status_code == 401


async def test_a_group_token_is_refused(stack: Stack) -> None:
    code = await issue_code_over_the_bus(stack, "555")
    r = await stack.client().post("/api/group-admin/login", json={"code": code})
    assert r.status_code == 200, r.text
    group = stack.client(token=r.json()["data"]["token"])
    assert (await upload(group, example_zip())).status_code == 403
    for path in ("/api/plugins", "/api/plugins/list", "/api/commands", "/api/commands/conflicts"):
        assert (await group.get(path)).status_code == 403, path
    body = {"name": "echo-weather", "config": {}}
    assert (await group.put("/api/plugins/config", json=body)).status_code == 403
    assert (await group.post("/api/commands/toggle", json={"handler_full_name": "builtin.帮助"})).status_code == 403


async def test_two_plugins_claiming_one_command(stack: Stack, bot: FakeNapCat) -> None:
    c = await stack.admin()
    await install(c, example_zip(), "echo-weather")
    # a second plugin whose `weather` command (and alias) collides, and one that claims a built-in
    twin = example_zip(name="twin", commands=[{"name": "weather", "aliases": ["天气"], "tool": "echo"}])
    await install(c, twin, "twin")
    items = {i["handler_full_name"]: i for i in (await c.get("/api/commands")).json()["data"]["items"]}
    assert items["builtin.帮助"]["plugin"] == "builtin" and items["builtin.帮助"]["permission"] == "member"
    assert items["echo-weather.weather"]["has_conflict"] and items["twin.weather"]["has_conflict"]
    assert not items["echo-weather.echo"]["has_conflict"]
    summary = (await c.get("/api/commands")).json()["data"]["summary"]
    assert summary["conflicts"] == 2  # `weather` and `天气`
    conflicts = (await c.get("/api/commands/conflicts")).json()["data"]
    assert [x["conflict_key"] for x in conflicts] == ["weather", "天气"]
    assert [h["handler_full_name"] for h in conflicts[0]["handlers"]] == ["echo-weather.weather", "twin.weather"]
    # while it stands, the earlier-enabled plugin answers
    assert (await ask(bot, "#weather Oslo")).startswith("Oslo: ")

    # rename onto a taken word: 409; resolve by moving the second one aside
    body = {"handler_full_name": "twin.weather", "new_name": "帮助"}
    assert (await c.post("/api/commands/rename", json=body)).status_code == 409
    r = await c.post("/api/commands/conflicts/weather/resolve", json={"resolution_strategy": "alias_second"})
    assert r.status_code == 200, r.text
    assert (await c.get("/api/commands")).json()["data"]["summary"]["conflicts"] == 0
    items = {i["handler_full_name"]: i for i in (await c.get("/api/commands")).json()["data"]["items"]}
    assert items["twin.weather"]["effective_command"] == "weather_twin" and items["twin.weather"]["aliases"] == []
    assert await ask(bot, "#weather_twin Oslo") == "Oslo"  # twin's command runs its `echo` tool
    assert (await ask(bot, "#weather Oslo")).startswith("Oslo: ")

    # a toggled-off command is no command: the message is a chat message (no LLM here: an apology)
    body = {"handler_full_name": "echo-weather.weather", "enabled": False}
    assert (await c.post("/api/commands/toggle", json=body)).status_code == 200
    assert not (await ask(bot, "#weather Oslo")).startswith("Oslo: ")


async def test_two_workers_and_reload_while_messages_flow(stack: Stack, bot: FakeNapCat) -> None:
    await stack.add_worker()
    c = await stack.admin()
    await install(c, example_zip(), "echo-weather")
    await running(c, "echo-weather", instances=2)
    for i in range(3):  # each worker runs its own copy: every message is answered once
        assert (await ask(bot, f"#weather City{i}")).startswith(f"City{i}: ")
    sent = len(bot.sent())
    cities = [f"R{i}" for i in range(20)]
    for i, city in enumerate(cities):
        await bot.private("555", f"#weather {city}")
        if i == 5:
            assert (await c.post("/api/plugins/reload", json={"name": "echo-weather"})).status_code == 200
    await bot.wait_sent(sent + len(cities), timeout=60)
    answers = bot.texts()[sent:]
    assert sorted(a.split(":")[0] for a in answers) == sorted(cities), answers  # none lost, none twice
    assert all(": " in a and "°" in a for a in answers), answers
