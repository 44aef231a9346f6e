"""The web panel in a real headless Chromium against a real stack and the fake LLM (issue 12): log in,
create a channel and test it, create a preset and make it default, chat in the playground, see a live
log line, log out; the phone layout; a group admin. Screenshots of each page go to docs/screenshots/."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx

from bus import logs, nats_conn
from tests.browser.conftest import WAIT_MS, shot
from tests.e2e.test_group_admin import issue_code_over_the_bus
from tests.fakes.llm import FakeProvider
from tests.stack import ADMIN_PASSWORD, Stack

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


async def new_page(browser: Any, viewport: dict[str, int]) -> tuple[Any, list[str]]:
    from playwright.async_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = await browser.new_context(viewport=viewport, locale="en-US")
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))  # an uncaught script error fails the test
    return page, errors


async def log_in(page: Any, base: str) -> None:
    from playwright.async_api import expect

    await page.goto(base + "/")
    await page.locator("#login-password").get_by_role("textbox", name="Password").fill(ADMIN_PASSWORD)
    await page.locator("#login-password button[type=submit]").click()
    await expect(page.locator("#logout")).to_be_visible()


async def go(page: Any, route: str) -> None:
    from playwright.async_api import expect

    await page.evaluate("r => { location.hash = r }", f"#/{route}")
    await expect(page.locator(f'#sidebar a[href="#/{route}"]')).to_have_attribute("aria-current", "page")


async def test_admin_journey(browser: Any, stack: Stack) -> None:
    from playwright.async_api import expect

    base = stack.edges[0].url
    page, errors = await new_page(browser, DESKTOP)
    async with FakeProvider("openai", api_key="sk-test") as fake:
        # The login page: a wrong password shows the envelope's message and code.
        await page.goto(base + "/")
        await shot(page, "login")
        await page.locator("#login-password").get_by_role("textbox", name="Password").fill("wrong")
        await page.locator("#login-password button[type=submit]").click()
        await expect(page.locator("#login-password .error")).to_contain_text("INVALID_CREDENTIALS")
        await log_in(page, base)

        # The server's settings.language (zh-CN by default) wins after login; switching stores it back.
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        await page.locator("#lang-select").select_option("en")
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        admin = await stack.admin()
        assert (await admin.get("/api/settings")).json()["data"]["language"] == "en"

        # Keyboard: the first Tab reaches the skip link.
        await page.reload()
        await expect(page.locator("#components li")).to_have_count(3)
        await page.keyboard.press("Tab")
        await expect(page.locator("a.skip")).to_be_focused()
        fcp = await page.evaluate(
            "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime ?? null"
        )
        print(f"\ndashboard first-contentful-paint: {fcp} ms")
        await shot(page, "dashboard")

        # Channels: a bad URL shows the validation error; then create, test (the upstream answer), models.
        await go(page, "channels")
        await page.locator("#new-channel").click()
        form = page.locator("#channel-form")
        await form.get_by_label("Name").fill("fake openai")
        await form.get_by_label("Base URL").fill("ftp://nowhere")
        await form.get_by_label("Base URL").evaluate("e => e.type = 'text'")  # let the server judge it
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".error")).to_contain_text("VALIDATION_ERROR")
        await form.get_by_label("Base URL").fill(fake.base_url)
        await form.get_by_label("API key").fill("sk-test")
        await form.get_by_label("Models (a, b, c)").fill("gpt-4o-mini")
        await form.locator("button[type=submit]").click()
        await expect(page.locator("#channel-form")).to_have_count(0)
        await page.get_by_role("button", name="Test fake openai").click()
        await expect(page.locator("#upstream-answer")).not_to_be_empty()
        answer = await page.locator("#upstream-answer").inner_text()
        assert "pong" in answer  # the fake echoes the probe's prompt
        await page.get_by_role("button", name="Models fake openai").click()
        await expect(page.locator("#model-list")).to_contain_text("gpt-4o")
        await shot(page, "channels")

        # Presets: create one and make it the default.
        await go(page, "presets")
        await page.locator("#new-preset").click()
        pform = page.locator("#preset-form")
        await pform.get_by_label("id", exact=True).fill("panel-test")
        await pform.get_by_label("Name").fill("Panel test")
        await pform.get_by_label("System prompt").fill("You are tested from a browser.")
        await pform.locator("button[type=submit]").click()
        await expect(page.locator("#preset-form")).to_have_count(0)
        await page.get_by_role("button", name="Set default panel-test").click()
        await expect(page.get_by_role("button", name="Set default panel-test")).to_be_disabled()
        preset = (await admin.get("/api/presets/panel-test")).json()["data"]
        assert preset["isDefault"] is True
        await shot(page, "presets")

        # Playground: the streamed answer and a tool call with its result.
        await go(page, "playground")
        await page.get_by_label("Message", exact=True).fill("hello from the panel")
        await page.locator("#chat-form button[type=submit]").click()
        await expect(page.locator("#chat-log .msg.assistant")).to_have_text("hello from the panel")
        await page.get_by_label("Message", exact=True).fill('dice <<tool:roll_dice {"sides": 6}>>')
        await page.locator("#chat-form button[type=submit]").click()
        await expect(page.locator("#chat-log .msg.tool")).to_have_count(2)
        await expect(page.locator("#chat-log .msg.tool").first).to_contain_text("roll_dice")
        await expect(page.locator("#chat-log .msg.assistant").last).to_contain_text("tool said:")
        conversation = await page.locator("#conversation-id").inner_text()
        assert conversation.startswith("web:")
        await shot(page, "playground")

        await go(page, "conversations")
        await page.get_by_role("link", name=conversation).click()
        await expect(page.locator(".chat .msg")).to_have_count(4)
        await shot(page, "conversations")

        await go(page, "tools")
        tester = page.locator("#tool-tester")
        await tester.get_by_label("Name").select_option("calculate")
        await tester.get_by_label("Arguments (JSON)").fill('{"expression": "6 * 7"}')
        await tester.locator("button[type=submit]").click()
        await expect(tester.locator("pre.json")).to_contain_text("42")
        await shot(page, "tools")

        # Logs: a line logged now reaches the open page through the bus and WS /ws.
        await go(page, "logs")
        await expect(page.locator("#logs-state")).to_have_attribute("data-state", "subscribed")
        nc = await nats_conn.connect(stack.nats_url, name="test-panel-logs")
        live_logger = logging.getLogger("chatbus.test.panel")
        publisher = logs.install_log_publisher(nc, "worker", "w-panel", logger=live_logger)
        try:
            line = f"panel live line {uuid.uuid4().hex[:8]}"
            live_logger.warning(line)
            await expect(page.locator("#log-feed")).to_contain_text(line)
        finally:
            await publisher.close()
            await nc.close()
        await shot(page, "logs")

        for route in ("audit", "config", "groups", "settings"):  # mcp, platforms: test_panel_mcp_platforms.py
            await go(page, route)
            await expect(page.locator("#page-title")).to_be_visible()
            await expect(page.locator("main .muted, main table, main form").first).to_be_visible()
            await shot(page, route)

        # Logout revokes the session: the cookie's token no longer works anywhere.
        token = next(c["value"] for c in await page.context.cookies() if c["name"] == "auth_token")
        await page.locator("#logout").click()
        await expect(page.locator("#login-password")).to_be_visible()
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
            assert (await c.get("/api/auth/verify")).status_code == 401
    assert errors == []


async def test_phone_layout_and_menu(browser: Any, stack: Stack) -> None:
    from playwright.async_api import expect

    await stack.set_config({"settings": {"language": "en"}})
    page, errors = await new_page(browser, PHONE)
    await log_in(page, stack.edges[0].url)
    menu = page.get_by_role("button", name="Menu")
    await expect(menu).to_be_visible()
    await expect(page.locator("#sidebar")).to_be_hidden()
    await expect(page.locator("#components li")).to_have_count(3)
    await shot(page, "phone-dashboard")
    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await expect(page.locator("#sidebar")).to_be_visible()
    await shot(page, "phone-menu")
    await page.locator('#sidebar a[href="#/channels"]').click()
    await expect(page.locator("#sidebar")).to_be_hidden()  # the menu closes on navigation
    await expect(page.locator("#page-title")).to_have_text("Channels")
    await page.locator("#theme-toggle").click()  # auto -> light -> dark: the dark theme on a phone
    await page.locator("#theme-toggle").click()
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    await shot(page, "phone-channels-dark")
    assert errors == []


async def test_group_admin_sees_only_its_group(browser: Any, stack: Stack) -> None:
    from playwright.async_api import expect

    await stack.set_config({"settings": {"language": "en"}})
    code = await issue_code_over_the_bus(stack, "4242")
    page, errors = await new_page(browser, DESKTOP)
    await page.goto(stack.edges[0].url + "/")
    await page.locator("#login-group input").fill(code)
    await page.locator("#login-group button[type=submit]").click()
    await expect(page.locator("#logout")).to_be_visible()
    await expect(page.locator("#sidebar a")).to_have_count(2)  # groups and settings, nothing else
    await expect(page.locator("#group-form")).to_contain_text("4242")
    await page.locator("#group-form").get_by_label("Model").fill("gpt-4o-mini")
    await page.locator("#group-form button[type=submit]").click()
    await expect(page.locator("#group-form .note")).to_be_visible()
    await shot(page, "group-admin")
    admin = await stack.admin()
    group = (await admin.get("/api/group-admin/4242/config")).json()["data"]
    assert group["overrides"]["model"] == "gpt-4o-mini"
    assert errors == []
