"""Browser tests: Debian's Chromium driven by Playwright (never `playwright install`: no download).

Without Chromium (/usr/bin/chromium, or the path in CHATBUS_CHROMIUM) or the playwright package these
tests report themselves skipped with that reason; every other test still runs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHATBUS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A test run writes no tracked file: screenshots go to a temporary folder unless CHATBUS_SCREENSHOTS names
# one (`CHATBUS_SCREENSHOTS=docs/screenshots python -m pytest tests/browser` refreshes the committed ones).
SCREENSHOTS = Path(os.environ.get("CHATBUS_SCREENSHOTS") or Path(tempfile.gettempdir()) / "chatbus-screenshots")
WAIT_MS = 15_000  # the bound on every wait in these tests: generous for a 2-core CI machine


def _have_chromium() -> bool:
    return Path(CHROMIUM).exists()


def _screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not _have_chromium():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHATBUS_CHROMIUM)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[test]')")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def shot(page: Any, name: str) -> None:
    """A screenshot of what the page shows now, for docs/panel.md."""
    await page.screenshot(path=_screenshot_path(name))
