"""Fixtures the plugin tests share (registered by `tests/conftest.py`); a test module opts in with
`pytestmark = pytest.mark.usefixtures("plugin_dir")` and asks for `bot`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.test_pipeline import connect_bot
from tests.e2e.test_platforms import make_platform
from tests.fakes.napcat import FakeNapCat
from tests.stack import Stack


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugins unpack under the data directory: a temporary one (set before the stack starts)."""
    monkeypatch.setenv("CHATBUS_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
async def bot(stack: Stack) -> AsyncIterator[FakeNapCat]:
    """A platform and a fake NapCat connected to it."""
    await make_platform(stack)
    bot = await connect_bot(stack)
    try:
        yield bot
    finally:
        await bot.close()
