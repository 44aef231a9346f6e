"""The plugins and commands pages in a real headless Chromium (issue 12): a bad zip's refusal is shown,
the example plugin (packed as `chatbus plugin pack` does) is uploaded, enabled and seen running with its
commands; its config is changed through the form generated from its JSON Schema (a 400 shows the path,
a masked secret left alone is kept); its commands are on the commands page, one is toggled off, a
rename onto a taken word shows the 409, and a second plugin's clash is resolved from the page.
Screenshots: plugins, commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.plugins.pack import pack
from tests.browser.conftest import shot
from tests.browser.test_panel import DESKTOP, PHONE, go, log_in, new_page
from tests.fakes.plugins import example_zip
from tests.fakes.plugins import upload as upload_zip
from tests.stack import Stack

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "echo-weather"
RUNNING_MS = 40_000  # a plugin is a new Python process started on the tools worker: slow on 2 cores
API_KEY = "wk-panel-secret-97531"


@pytest.fixture(autouse=True)
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugins unpack under the data directory: a temporary one (set before the stack starts)."""
    monkeypatch.setenv("CHATBUS_DATA_DIR", str(tmp_path / "data"))


async def test_plugins_and_commands_pages(browser: Any, stack: Stack, tmp_path: Path) -> None:
    from playwright.async_api import expect

    zipped = tmp_path / "echo-weather.zip"
    zipped.write_bytes(pack(EXAMPLE))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip")
    await stack.set_config({"settings": {"language": "en"}})
    page, errors = await new_page(browser, DESKTOP)
    await log_in(page, stack.edges[0].url)
    await go(page, "plugins")

    # A file that is not a zip: the envelope's 400 message is shown where the upload was made.
    upload = page.locator("#plugin-upload")
    await upload.get_by_label("Plugin zip").set_input_files(str(bad))
    await upload.locator("button[type=submit]").click()
    await expect(upload.locator(".error")).to_be_visible()
    assert (await upload.locator(".error").inner_text()).strip()

    await upload.get_by_label("Plugin zip").set_input_files(str(zipped))
    await upload.locator("button[type=submit]").click()
    await expect(upload.locator(".note")).to_have_text("Uploaded")
    status = page.locator('.plugin-status[data-plugin="echo-weather"]')
    await expect(status).to_have_text("stopped")
    row = page.locator("tr", has=status)
    await expect(row.locator(".plugin-commands")).to_have_text("weather, echo")

    # Enable: the page follows it until the tools worker runs it, with its tools.
    await page.get_by_role("button", name="Enable echo-weather").click()
    await expect(status).to_have_text("running", timeout=RUNNING_MS)
    await expect(row).to_contain_text("echo-weather__weather")

    # The config form, generated from the schema: an enum select, text fields, a password field.
    await page.get_by_role("button", name="Config echo-weather").click()
    form = page.locator("#plugin-config")
    assert await form.get_by_label("apiKey").get_attribute("type") == "password"
    await form.get_by_label("unit").select_option("F")
    await form.get_by_label("greeting").fill("Hi ")
    await form.get_by_label("apiKey").fill(API_KEY)
    await form.get_by_label("greeting").evaluate("e => e.removeAttribute('maxlength')")
    await form.get_by_label("defaultCity").evaluate("e => e.removeAttribute('maxlength')")
    await form.get_by_label("defaultCity").fill("x" * 60)
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".error")).to_contain_text("config.defaultCity")  # the 400's path
    await form.get_by_label("defaultCity").fill("Paris")
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".note")).to_have_text("Saved")
    masked = await form.get_by_label("apiKey").input_value()
    assert API_KEY not in masked and masked

    admin = await stack.admin()

    async def stored() -> dict[str, Any]:
        r = await admin.get("/api/plugins/config", params={"name": "echo-weather"})
        return dict(r.json()["data"]["config"])

    saved = await stored()
    assert saved["unit"] == "F" and saved["greeting"] == "Hi " and saved["defaultCity"] == "Paris"
    # Saved again with the masked key left alone: the stored secret is kept, not replaced by the mask.
    await form.get_by_label("greeting").fill("Hello ")
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".note")).to_have_text("Saved")
    again = await stored()
    assert again["greeting"] == "Hello " and again["apiKey"] == saved["apiKey"]
    await expect(status).to_have_text("running", timeout=RUNNING_MS)
    await page.set_viewport_size({"width": DESKTOP["width"], "height": 1200})  # the form and the list together
    await page.evaluate("scrollTo(0, 0)")
    await shot(page, "plugins")
    await page.set_viewport_size(DESKTOP)

    # The commands page: the plugin's commands with the built-ins; toggle one off; a taken name is a 409.
    await go(page, "commands")
    echo = page.locator('.command-enabled[data-command="echo-weather.echo"]')
    await expect(echo).to_have_text("✓")
    await expect(page.locator('.command-enabled[data-command="echo-weather.weather"]')).to_have_text("✓")
    await page.get_by_role("button", name="Disable echo-weather.echo").click()
    await expect(echo).to_have_text("✗")
    await expect(page.locator("#command-summary")).to_contain_text("1")
    await page.get_by_role("button", name="Rename echo-weather.weather").click()
    rename = page.locator("#command-rename")
    await rename.get_by_label("New name").fill("帮助")
    await rename.locator("button[type=submit]").click()
    await expect(rename.locator(".error")).to_be_visible()
    await rename.get_by_role("button", name="Cancel").click()
    items = {i["handler_full_name"]: i for i in (await admin.get("/api/commands")).json()["data"]["items"]}
    assert items["echo-weather.echo"]["enabled"] is False
    assert items["echo-weather.weather"]["effective_command"] == "weather"

    # A second plugin claiming `weather` (and its alias): the conflicts are listed and resolved from the page.
    twin = example_zip(name="twin", commands=[{"name": "weather", "aliases": ["天气"], "tool": "echo"}])
    assert (await upload_zip(admin, twin)).status_code == 201
    assert (await admin.post("/api/plugins/enable", json={"name": "twin"})).status_code == 200
    await page.locator("#refresh-commands").click()
    conflict = page.locator('.conflict[data-conflict="weather"]')
    await expect(conflict).to_contain_text("twin.weather")
    await conflict.get_by_label("Resolution: weather").select_option("alias_second")
    await page.get_by_role("button", name="Resolve weather").click()
    await expect(conflict).to_have_count(0)
    items = {i["handler_full_name"]: i for i in (await admin.get("/api/commands")).json()["data"]["items"]}
    assert items["twin.weather"]["effective_command"] == "weather_twin"
    await shot(page, "commands")

    # At a phone's width the table's rows stack with their labels and the actions stay reachable.
    await page.set_viewport_size(PHONE)
    await go(page, "plugins")
    await expect(page.get_by_role("button", name="Menu")).to_be_visible()
    await expect(page.get_by_role("button", name="Config echo-weather")).to_be_visible()
    assert errors == []
