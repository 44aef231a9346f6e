"""Channel test and model list against a local provider; the test result drives the channel status."""

from __future__ import annotations

import uuid

import nats

from bus import subjects
from schemas.envelope import Actor, CommandEnvelope, command_encoder, reply_decoder
from tests.e2e.test_chat import add_channel
from tests.e2e.test_presets import envelope_error
from tests.fakes.llm import FakeProvider, reply, status
from tests.stack import Stack


async def test_test_and_models_for_saved_and_unsaved_channels(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai", models=["m-1", "m-2"]) as fake:
        await add_channel(c, fake, "probe")
        fake.script(reply("pong"))
        r = await c.post("/api/channels/probe/test", json={})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["success"] is True and data["response"] == "pong"
        assert data["model"] == "m-1" and data["elapsed"] >= 0
        ch = (await c.get("/api/channels/probe")).json()["data"]
        assert ch["status"] == "active" and ch["testedAt"]

        r = await c.get("/api/channels/probe/models")
        assert r.status_code == 200 and r.json()["data"]["models"] == ["m-1", "m-2"]
        unsaved = {"name": "u", "adapterType": "openai", "baseUrl": fake.base_url, "apiKey": "sk-x"}
        r = await c.post("/api/channels/fetch-models", json=unsaved)
        assert r.status_code == 200 and r.json()["data"]["models"] == ["m-1", "m-2"]
        fake.script(reply("pong"))
        r = await c.post("/api/channels/test", json={**unsaved, "model": "m-2"})
        assert r.status_code == 200 and r.json()["data"]["model"] == "m-2"

        # A failed test marks the channel `error` and carries the upstream status and message.
        fake.script(status(401, message="Incorrect API key provided"))
        err = envelope_error(await c.post("/api/channels/probe/test"), 502, "MODEL_ERROR")
        upstream = err["details"][0]
        assert upstream["upstreamStatus"] == 401 and "Incorrect API key" in upstream["upstreamMessage"]
        ch = (await c.get("/api/channels/probe")).json()["data"]
        assert ch["status"] == "error" and "401" in ch["lastError"]
        # An `error` channel is not used for chat until a successful test.
        r = await c.post("/api/chat", json={"message": "hi"})
        assert r.status_code == 503 and r.json()["code"] == "CHANNEL_UNAVAILABLE"
        fake.script(reply("pong"))
        assert (await c.post("/api/channels/probe/test")).status_code == 200
        assert (await c.get("/api/channels/probe")).json()["data"]["status"] == "active"

    # Unreachable provider (the fake has stopped).
    err = envelope_error(await c.post("/api/channels/probe/test"), 502, "CONNECTION_FAILED")
    assert err["details"][0]["kind"] == "connection"
    envelope_error(await c.post("/api/channels/nope/test"), 404, "CHANNEL_NOT_FOUND")
    envelope_error(await c.post("/api/channels/test", json={"name": "x", "baseUrl": "nope"}), 400, "VALIDATION_ERROR")


async def test_three_consecutive_failures_mark_a_channel_error(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as bad, FakeProvider("openai") as good:
        await add_channel(c, bad, "bad", priority=1)
        await add_channel(c, good, "good", priority=2)
        bad.script(status(500), status(502), status(503))
        for _ in range(3):
            r = await c.post("/api/chat", json={"message": "hi"})
            assert r.status_code == 200 and r.json()["data"]["channelId"] == "good"
        assert (await c.get("/api/channels/bad")).json()["data"]["status"] == "error"
        r = await c.post("/api/chat", json={"message": "hi"})
        assert r.json()["data"]["channelId"] == "good" and len(bad.requests) == 3  # no longer tried


async def test_chat_command_is_callable_on_the_bus(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "bus")
        fake.script(reply("from the bus"))
        nc = await nats.connect(stack.nats_url)
        try:
            envelope = CommandEnvelope(
                command_id=uuid.uuid4(),
                type="chat.send",
                actor=Actor("qq:42", "platform"),
                payload={
                    "message": "hello",
                    "conversation_id": "group:777:user:42",
                    "user_id": "42",
                    "group_id": "777",
                    "platform": "qq",
                },
            )
            msg = await nc.request(subjects.command("chat", "send"), command_encoder.encode(envelope), timeout=20)
        finally:
            await nc.close()
        out = reply_decoder.decode(msg.data)
        assert out.ok, out.error
        assert out.result["response"] == "from the bus" and out.result["conversationId"] == "group:777:user:42"
        listed = (await c.get("/api/conversations", params={"groupId": "777"})).json()["data"]["items"]
        assert [(i["id"], i["platform"], i["userId"]) for i in listed] == [("group:777:user:42", "qq", "42")]
