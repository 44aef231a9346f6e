"""The MCP servers and platforms pages in a real headless Chromium (issue 12): add a stdio MCP server that
runs the fake MCP server and see it connected on a tools worker with its tools, import a Claude Desktop
document with a refused entry, edit a server without exposing its env secret; create a platform, see the
OneBot URL, connect the fake NapCat and see the bot connected. Screenshots: mcp, platforms, phone-platforms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import shot
from tests.browser.test_panel import DESKTOP, PHONE, go, log_in, new_page
from tests.e2e.test_platforms import ws_url
from tests.fakes.mcp_harness import ALLOW, MODULE, REPO
from tests.fakes.napcat import FakeNapCat
from tests.stack import Stack
from tests.waiting import wait_until

CONNECT_MS = 40_000  # a stdio server is a new Python process that imports the MCP SDK: slow on 2 cores
ENV_SECRET = "sk-panel-env-secret-13579"
TOKEN = "panel-token-24680"


@pytest.fixture(autouse=True)
def allow_fake_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the operator would set: the fake server's argv is allowed, nothing else."""
    monkeypatch.setenv("CHATBUS_MCP_STDIO_ALLOW", ALLOW)


async def test_mcp_servers_page(browser: Any, stack: Stack) -> None:
    from playwright.async_api import expect

    await stack.set_config({"settings": {"language": "en"}})
    page, errors = await new_page(browser, DESKTOP)
    await log_in(page, stack.edges[0].url)
    await go(page, "mcp")

    # Add the fake MCP server over stdio; the page follows it until a tools worker has connected it.
    await page.locator("#new-mcp").click()
    form = page.locator("#mcp-form")
    await form.get_by_label("Name").fill("panelfake")
    await form.get_by_label("Command").fill("python")
    await form.get_by_label("Arguments (one per line)").fill(f"-m\n{MODULE}\nstdio\n0\npanelfake")
    await form.get_by_label("Working directory").fill(REPO)
    await form.get_by_label("Environment (KEY=VALUE per line)").fill(f"PANEL_SECRET={ENV_SECRET}")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#mcp-form")).to_have_count(0)
    status = page.locator('.mcp-status[data-server="panelfake"]')
    await expect(status).to_have_text("connected", timeout=CONNECT_MS)
    row = page.locator("tr", has=status)
    await expect(row.locator("ul.plain li").first).to_contain_text("connected")  # one line per tools worker

    await page.get_by_role("button", name="Tools panelfake").click()
    await expect(page.locator("#mcp-tools")).to_contain_text("panelfake__echo")

    # The env value is write-only: the edit form shows it masked, and saving it unchanged keeps it.
    await page.get_by_role("button", name="Edit panelfake").click()
    env = page.locator("#mcp-form").get_by_label("Environment (KEY=VALUE per line)")
    assert ENV_SECRET not in await env.input_value()
    assert "****" in await env.input_value()
    await page.locator("#mcp-form").get_by_label("Timeout (s)").fill("30")
    await page.locator("#mcp-form button[type=submit]").click()
    await expect(page.locator("#mcp-form")).to_have_count(0)
    admin = await stack.admin()
    stored = (await admin.get("/api/mcp/servers/panelfake")).json()["data"]
    assert stored["timeout"] == 30 and stored["env"]["PANEL_SECRET"].endswith(ENV_SECRET[-4:])

    # A Claude Desktop document with one refused entry: the counts and the refusal are shown.
    await page.locator("#import-mcp").click()
    doc = {"mcpServers": {"evil": {"command": "sh", "args": ["-c", "id"]}}}
    await page.locator("#mcp-import").get_by_label("Claude Desktop JSON").fill(json.dumps(doc))
    await page.locator("#mcp-import button[type=submit]").click()
    await expect(page.locator("#import-result")).to_contain_text("Failed")
    await expect(page.locator("#mcp-import .error")).to_contain_text("evil: stdio command not allowed")
    await page.locator("#mcp-import").get_by_role("button", name="Close").click()
    await page.locator("#mcp-tools").locator("..").get_by_role("button", name="Close").click()
    await expect(status).to_have_text("connected", timeout=CONNECT_MS)  # back after the edit's reconnect
    await shot(page, "mcp")

    # Disconnect from the page: every instance lets go of it.
    await page.get_by_role("button", name="Disconnect panelfake").click()
    await expect(status).to_have_text("disconnected", timeout=CONNECT_MS)
    assert errors == []


async def test_platforms_page(browser: Any, stack: Stack) -> None:
    from playwright.async_api import expect

    await stack.set_config({"settings": {"language": "en"}})
    page, errors = await new_page(browser, DESKTOP)
    await log_in(page, stack.edges[0].url)
    await go(page, "platforms")
    assert (await page.get_by_label("OneBot v11 reverse WebSocket URL").input_value()) == ws_url(stack)

    # A self id that is not a number: the envelope's validation error is shown in the form.
    await page.locator("#new-platform").click()
    form = page.locator("#platform-form")
    await form.get_by_label("Name").fill("QQ panel")
    await form.get_by_label("Bot account (self id)").fill("bot")
    await form.get_by_label("Bot account (self id)").evaluate("e => e.removeAttribute('pattern')")
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".error")).to_contain_text("VALIDATION_ERROR")
    await form.get_by_label("Bot account (self id)").fill("10001")
    await form.get_by_label("Access token").fill(TOKEN)
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#platform-form")).to_have_count(0)
    await expect(page.locator("main table")).to_contain_text("QQ panel")
    status = page.locator(".platform-status")
    await expect(status).to_have_text("Disconnected")

    admin = await stack.admin()
    platform = (await admin.get("/api/platforms")).json()["data"]["items"][0]
    assert TOKEN not in json.dumps(platform)

    # The fake NapCat connects with the token; the page shows the bot connected after a refresh.
    bot = FakeNapCat(ws_url(stack), self_id="10001", token=TOKEN)
    await bot.connect()
    try:

        async def connected() -> bool:
            r = await admin.get(f"/api/platforms/{platform['id']}")
            return bool(r.json()["data"]["connected"])

        await wait_until(connected, message="the bot is connected")
        await page.locator("#refresh-platforms").click()
        await expect(status).to_have_text("Connected")
        await expect(page.locator("#platform-summary")).to_contain_text("1")
        await shot(page, "platforms")
        await page.set_viewport_size(PHONE)
        await expect(page.get_by_role("button", name="Menu")).to_be_visible()
        await shot(page, "phone-platforms")
    finally:
        await bot.close()
    assert errors == []
