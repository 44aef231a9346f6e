"""Operator friction found when chatbus was first tried as a new user would (issue 7 item 9, edge parts)."""

from __future__ import annotations

import re

from tests.e2e.test_chat import add_channel
from tests.e2e.test_presets import envelope_error
from tests.fakes.llm import FakeProvider
from tests.stack import Stack


async def test_providers_and_channels_are_paged(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        for i in range(22):
            await add_channel(c, fake, f"ch-{i:02d}", priority=i)
    # Before: page and page_size were ignored: every provider, and `page_size: 100`.
    data = (await c.get("/api/llm/providers", params={"page": 2, "page_size": 5})).json()["data"]
    assert [p["id"] for p in data["items"]] == [f"ch-{i:02d}" for i in range(5, 10)]
    assert (data["total"], data["page"], data["page_size"]) == (22, 2, 5)
    assert set(data["items"][0]) == {"id", "name", "type", "api_key", "base_url", "model", "enabled"}
    # The default page is 20 items, on both dialects.
    for path in ("/api/llm/providers", "/api/channels"):
        data = (await c.get(path)).json()["data"]
        assert len(data["items"]) == 20 and data["page_size"] == 20 and data["total"] == 22, path
    envelope_error(await c.get("/api/llm/providers", params={"page_size": 0}), 400, "VALIDATION_ERROR")


async def test_chat_sessions_are_paged(stack: Stack) -> None:
    c = await stack.admin()
    ids = [(await c.post("/chat/new_session")).json()["data"]["session_id"] for _ in range(3)]
    data = (await c.get("/chat/sessions", params={"page_size": 2})).json()["data"]
    # Before: every session, whatever the query.
    assert len(data["sessions"]) == 2 and data["total"] == 3 and data["page"] == 1 and data["page_size"] == 2
    rest = (await c.get("/chat/sessions", params={"page": 2, "page_size": 2})).json()["data"]["sessions"]
    assert {s["id"] for s in data["sessions"] + rest} == set(ids)


async def test_send_to_an_unknown_session_is_404(stack: Stack) -> None:
    c = await stack.admin()
    # Before: 200 and a stream; the made-up id became a new conversation.
    r = await c.post("/chat/send", json={"message": "hi", "session_id": "web:no-such-session"})
    envelope_error(r, 404, "CONVERSATION_NOT_FOUND")
    assert (await c.get("/chat/get_session", params={"session_id": "web:no-such-session"})).status_code == 404


async def test_fetch_models_needs_no_name(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        body = {"adapterType": "openai", "baseUrl": fake.base_url, "apiKey": "sk-x"}
        # Before: 400 VALIDATION_ERROR `name: Object missing required field`.
        r = await c.post("/api/channels/fetch-models", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["data"]["models"]


async def test_docs_ui_works_offline(stack: Stack) -> None:
    c = stack.client()
    page = await c.get("/schema")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    # Before: the page loaded its script from a CDN (blank on a machine without internet).
    assert not re.search(r"(src|href)=\"https?://", page.text), page.text[:500]
    assets = re.findall(r"(?:src|href)=\"(/[^\"]+)\"", page.text)
    assert len(assets) == 3
    for asset in assets:
        r = await c.get(asset)
        assert r.status_code == 200 and len(r.content) > 1000, asset
