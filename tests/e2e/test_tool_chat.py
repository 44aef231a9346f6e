"""The tool loop in chat turns (API.md §8 "Tools in chat"), against fake providers in each protocol
that ask for a tool and then answer with the result they were given."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import nats
import pytest

from bus import subjects
from schemas.envelope import Actor, CommandEnvelope, command_encoder, reply_decoder
from services.tools.registry import SOURCE_FACTORIES, CallContext, ToolDef
from tests.e2e.test_chat import add_channel, sse
from tests.e2e.test_tools import logs_of
from tests.fakes.llm import FakeProvider, Protocol, reply, status, tool_call
from tests.stack import Stack

CALC = '<<tool:calculate {"expression": "6 * 7"}>>'


def tool_results_sent(fake: FakeProvider) -> list[Any]:
    """The tool results the model was sent back, whatever the protocol's shape."""
    body = fake.last.body
    if fake.protocol == "gemini":
        return [p["functionResponse"] for c in body["contents"] for p in c["parts"] if "functionResponse" in p]
    if fake.protocol == "openai":
        return [m for m in body["messages"] if m["role"] == "tool"]
    return [
        b
        for m in body["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_result"
    ]


@pytest.mark.parametrize("protocol", ["openai", "claude", "gemini"])
async def test_turn_with_a_tool_round(stack: Stack, protocol: Protocol) -> None:
    c = await stack.admin()
    async with FakeProvider(protocol) as fake:
        await add_channel(c, fake, "p")
        r = await c.post("/api/chat", json={"message": f"what is 6*7? {CALC}"})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["response"].startswith("tool said:") and "42" in data["response"]
        [call] = data["toolCalls"]
        assert call["name"] == "calculate" and call["success"] is True and call["result"]["result"] == 42
        assert json.loads(call["arguments"]) == {"expression": "6 * 7"}
        # Two model calls: the first declared the tools, the second carried the result back.
        assert len(fake.requests) == 2
        assert len(tool_results_sent(fake)) == 1
        first = fake.requests[0].body
        declared = json.dumps(first.get("tools"))
        assert "calculate" in declared and "roll_dice" in declared
        # The usage covers both rounds.
        assert data["usage"]["totalTokens"] > 0
        detail = (await c.get(f"/api/conversations/{data['conversationId']}")).json()["data"]
        stored = detail["messages"][-1]["toolCalls"]
        assert stored[0]["name"] == "calculate" and stored[0]["result"]["result"] == 42
        logs = await logs_of(c, "calculate", 1)
        assert logs[0]["conversationId"] == data["conversationId"] and logs[0]["source"] == "builtin"


async def test_stream_frames_and_neko_dialect(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "p")
        async with c.stream("POST", "/api/chat/stream", json={"message": f"calc {CALC}"}) as r:
            frames = await sse(r)
        kinds = [f["type"] for f in frames]
        assert kinds[0] == "start" and kinds[-1] == "end", frames
        call = next(f for f in frames if f["type"] == "tool_call")
        result = next(f for f in frames if f["type"] == "tool_result")
        assert call["name"] == "calculate" and call["arguments"] == {"expression": "6 * 7"} and call["id"]
        assert result["id"] == call["id"] and result["success"] is True and result["result"]["result"] == 42
        assert result["duration"] >= 0
        assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("end")
        text = "".join(f["text"] for f in frames if f["type"] == "content")
        assert "42" in text

        session = (await c.post("/chat/new_session")).json()["data"]["session_id"]
        async with c.stream("POST", "/chat/send", json={"message": f"again {CALC}", "session_id": session}) as r:
            frames = await sse(r)
        assert frames[-1] == {"type": "end"}
        assert "42" in "".join(f["text"] for f in frames if f["type"] == "plain")
        assert len(await logs_of(c, "calculate", 2)) == 2


async def test_failing_and_disabled_tools_give_the_model_an_error(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("claude") as fake:
        await add_channel(c, fake, "p")
        bad = '<<tool:calculate {"expression": "__import__(\'os\')"}>>'
        r = await c.post("/api/chat", json={"message": bad})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["toolCalls"][0]["success"] is False and "not allowed" in data["toolCalls"][0]["error"]
        assert "error" in data["response"]

        assert (await c.post("/api/tools/calculate/toggle", json={"enabled": False})).status_code == 200
        r = await c.post("/api/chat", json={"message": f"x {CALC}"})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        # A disabled tool is not offered; asked for anyway, the model gets TOOL_DISABLED back.
        assert "calculate" not in json.dumps(fake.requests[-2].body.get("tools"))
        assert data["toolCalls"][0]["success"] is False and "TOOL_DISABLED" in data["toolCalls"][0]["error"]


async def test_rounds_are_bounded(stack: Stack) -> None:
    await stack.set_config({"tools": {"maxRounds": 2}})
    for worker in stack.workers:  # set directly in the store: refresh the workers' caches now
        await worker.config.refresh()
        assert worker.config.document.tools.max_rounds == 2
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "p")
        dice = [reply(tool_calls=[tool_call("roll_dice", {"sides": 6})]) for _ in range(5)]
        fake.script(*dice)
        r = await c.post("/api/chat", json={"message": "roll forever"})
        assert r.status_code == 200, r.text
        # Two rounds ran; the third ask got an error result and the model one last say.
        assert len(r.json()["data"]["toolCalls"]) == 2
        assert len(fake.requests) == 4


async def test_retried_turn_does_not_run_a_tool_twice(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("gemini") as fake:
        await add_channel(c, fake, "p")
        headers = {"Idempotency-Key": "turn-1"}
        body = {"message": '<<tool:roll_dice {"sides": 1000, "count": 3}>>'}
        first = await c.post("/api/chat", json=body, headers=headers)
        assert first.status_code == 200, first.text
        again = await c.post("/api/chat", json=body, headers=headers)
        assert again.json()["data"] == first.json()["data"]
        assert len(await logs_of(c, "roll_dice", 1)) == 1


class _PluginSource:
    """A plugin tool source, as any other source plugs in: one slow tool and one that crashes."""

    kind = "plugin"

    def tools(self) -> list[ToolDef]:
        return [
            ToolDef("slow_tool", "sleeps", {"type": "object", "properties": {}}, source="plugin", category="test"),
            ToolDef("boom_tool", "crashes", {"type": "object", "properties": {}}, source="plugin", category="test"),
        ]

    async def call(self, name: str, arguments: dict[str, Any], context: CallContext) -> Any:
        if name == "slow_tool":
            await asyncio.sleep(30)
        raise RuntimeError("kaboom")


async def test_slow_and_crashing_plugin_tools_give_error_results(nats_url: str, database: str) -> None:
    SOURCE_FACTORIES.append(lambda ctx: _PluginSource())
    stack = Stack(nats_url, database)
    try:
        await stack.start()
        await stack.set_config({"tools": {"timeoutMs": 300}})
        for worker in stack.workers:
            await worker.config.refresh()
    finally:
        SOURCE_FACTORIES.pop()
    try:
        c = await stack.admin()
        listed = (await c.get("/api/tools", params={"source": "plugin"})).json()["data"]
        assert {t["name"] for t in listed["items"]} == {"slow_tool", "boom_tool"}
        r = await c.post("/api/tools/test", json={"toolName": "boom_tool"})
        assert r.status_code == 200 and r.json()["data"]["success"] is False
        assert r.json()["data"]["error"] == "RuntimeError: kaboom"
        async with FakeProvider("openai") as fake:
            await add_channel(c, fake, "p")
            r = await c.post("/api/chat", json={"message": "<<tool:slow_tool>>"})
            assert r.status_code == 200, r.text
            data = r.json()["data"]
            assert data["toolCalls"][0]["success"] is False and "timed out" in data["toolCalls"][0]["error"]
            assert "timed out" in data["response"]
    finally:
        await stack.stop()


async def test_dangerous_tool_refused_in_a_group_callers_turn(stack: Stack) -> None:
    """A turn that comes from a group (a platform adapter's command, group-scoped actor)."""
    c = await stack.admin()
    assert (await c.post("/api/tools/dangerous/toggle", json={"toolName": "roll_dice", "isDangerous": True})).is_success
    async with FakeProvider("claude") as fake:
        await add_channel(c, fake, "p")
        nc = await nats.connect(stack.nats_url)
        try:
            envelope = CommandEnvelope(
                command_id=uuid.uuid4(),
                type="chat.send",
                actor=Actor("qq:42", "group:777"),
                payload={"message": "<<tool:roll_dice>>", "conversation_id": "group:777", "group_id": "777"},
            )
            msg = await nc.request(subjects.command("chat", "send"), command_encoder.encode(envelope), timeout=15)
        finally:
            await nc.close()
        reply = reply_decoder.decode(msg.data)
        assert reply.ok, reply.error
        # Not offered to the model; asked for anyway, refused.
        assert "roll_dice" not in json.dumps(fake.requests[0].body.get("tools"))
        call = reply.result["toolCalls"][0]
        assert call["success"] is False and "FORBIDDEN" in call["error"]
        assert (await c.get("/api/tools/logs", params={"toolName": "roll_dice"})).json()["data"]["total"] == 0


async def test_search_history_reads_only_the_callers_conversation(stack: Stack) -> None:
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "p")
        await c.post("/api/chat", json={"message": "secret banana plan", "conversationId": "web:other"})
        await c.post("/api/chat", json={"message": "I like banana bread", "conversationId": "web:mine"})
        ask = '<<tool:search_history {"query": "banana", "conversation_id": "web:other"}>>'
        r = await c.post("/api/chat", json={"message": ask, "conversationId": "web:mine"})
        assert r.status_code == 200, r.text
        found = r.json()["data"]["toolCalls"][0]["result"]
        contents = [m["content"] for m in found["messages"]]
        assert "I like banana bread" in contents and not any("secret" in m for m in contents)
    # Outside a chat turn there is no "own conversation".
    r = await c.post("/api/tools/test", json={"toolName": "search_history", "arguments": {"query": "banana"}})
    assert r.json()["data"]["success"] is False


async def test_turn_failing_after_a_tool_ran_is_retried_without_running_it_again(stack: Stack) -> None:
    """The worker gets as far as running the tool, then the turn fails (here: the model refuses the
    second call); the client retries with the same key: the tool's stored result is reused."""
    c = await stack.admin()
    async with FakeProvider("openai") as fake:
        await add_channel(c, fake, "p")
        dice = tool_call("roll_dice", {"sides": 1000, "count": 4}, id="call_1")
        fake.script(reply(tool_calls=[dice]), status(400))
        headers = {"Idempotency-Key": "turn-after-tool"}
        first = await c.post("/api/chat", json={"message": "roll"}, headers=headers)
        assert first.status_code == 502, first.text
        [ran] = await logs_of(c, "roll_dice", 1)
        fake.script(reply(tool_calls=[dice]))
        again = await c.post("/api/chat", json={"message": "roll"}, headers=headers)
        assert again.status_code == 200, again.text
        call = again.json()["data"]["toolCalls"][0]
        assert call["result"] == ran["result"]
        assert (await c.get("/api/tools/logs", params={"toolName": "roll_dice"})).json()["data"]["total"] == 1
