"""The provider adapters against local fake servers that speak each real wire protocol: replies, streams,
tool calls both ways, where each protocol wants the system prompt, every error kind, model lists, base
URL normalisation, secrets kept out of errors, custom headers and the per-proxy client cache."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import pickle
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from schemas.llm import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    ProviderTarget,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
)
from services.channels.providers import anthropic, gemini, openai
from services.channels.providers.base import Adapter
from services.channels.providers.errors import ProviderError
from services.channels.providers.registry import ADAPTERS, HttpClients, adapter_for
from tests.fakes.llm import FakeProvider, Protocol, delay, garbage, reply, status, stream, tool_call

KEY = "sk-test-SECRET-0123456789abcdef"
PROTOCOLS: list[Protocol] = ["openai", "claude", "gemini"]
MODEL = {"openai": "gpt-4o-mini", "claude": "claude-3-5-haiku-20241022", "gemini": "gemini-2.0-flash"}
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
)


Fakes = dict[str, FakeProvider]
# One fake per protocol and one client for the whole module, reset before each test: starting and stopping
# uvicorn per test would cost more than the tests themselves. (The mark is module-wide, so the few checks
# that need no I/O are async too.)
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fakes() -> AsyncIterator[Fakes]:
    servers: Fakes = {protocol: await FakeProvider(protocol, api_key=KEY).start() for protocol in PROTOCOLS}
    yield servers
    for server in servers.values():
        await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # The client the workers use (aiohttp below httpx, no cookie jar), so every check here runs on it.
    clients = HttpClients()
    yield clients.client_for(ProviderTarget(adapter_type="openai", base_url="http://127.0.0.1"))
    await clients.aclose()


@pytest.fixture(autouse=True)
def _fresh_fakes(fakes: Fakes) -> None:
    for server in fakes.values():
        server.reset()


@pytest.fixture(params=PROTOCOLS)
def fake(request: pytest.FixtureRequest, fakes: Fakes) -> FakeProvider:
    return fakes[request.param]


def target(fake: FakeProvider, **overrides: Any) -> ProviderTarget:
    fields: dict[str, Any] = {"adapter_type": fake.protocol, "base_url": fake.base_url, "api_key": KEY}
    fields.update(overrides)
    return ProviderTarget(**fields)


def chat(fake: FakeProvider, text: str = "hello there", **overrides: Any) -> ChatRequest:
    fields: dict[str, Any] = {"model": MODEL[fake.protocol], "messages": [ChatMessage(role="user", content=text)]}
    fields.update(overrides)
    return ChatRequest(**fields)


def adapter(fake: FakeProvider) -> Adapter:
    return ADAPTERS[fake.protocol]


async def collect(fake: FakeProvider, http: httpx.AsyncClient, request: ChatRequest, **kw: Any) -> list[StreamEvent]:
    return [event async for event in adapter(fake).stream(http, target(fake, **kw), request)]


async def fail(coro: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await coro
    return info.value


async def fail_stream(fake: FakeProvider, http: httpx.AsyncClient, request: ChatRequest, **kw: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await collect(fake, http, request, **kw)
    return info.value


def final(events: list[StreamEvent]) -> ChatResult:
    assert isinstance(events[-1], StreamDone)
    assert not any(isinstance(e, StreamDone) for e in events[:-1])
    return events[-1].result


# --- replies -------------------------------------------------------------------------------------


async def test_complete_echoes_the_last_user_message(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    result = await adapter(fake).complete(http, target(fake), chat(fake, "hello there"))
    assert result.content == "hello there"
    assert result.finish_reason == "stop"
    assert result.model == MODEL[fake.protocol]
    assert result.tool_calls == []
    assert result.usage is not None
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


async def test_complete_reports_the_scripted_usage(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(reply("Bonjour", usage=(11, 7)))
    result = await adapter(fake).complete(http, target(fake), chat(fake))
    assert result.content == "Bonjour"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (11, 7, 18)


async def test_stream_deltas_concatenate_to_the_final_content(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(stream(["Hel", "lo", ", wor", "ld"], usage=(5, 4)))
    events = await collect(fake, http, chat(fake))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Hel", "lo", ", wor", "ld"]
    result = final(events)
    assert result.content == "".join(deltas) == "Hello, world"
    assert result.finish_reason == "stop"
    assert result.model == MODEL[fake.protocol]
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (5, 4, 9)


async def test_default_stream_echoes_in_word_tokens(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    events = await collect(fake, http, chat(fake, "one two three"))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["one", " two", " three"]
    result = final(events)
    assert result.content == "one two three"
    assert result.usage is not None and result.usage.total_tokens > 0


async def test_openai_stream_asks_for_usage(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["openai"]
    await collect(fake, http, chat(fake))
    body = fake.last.body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert fake.last.headers["accept"] == "text/event-stream"


async def test_gemini_stream_uses_the_sse_endpoint(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["gemini"]
    await collect(fake, http, chat(fake))
    assert fake.last.path == "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    assert fake.last.query == {"alt": "sse"}
    await adapter(fake).complete(http, target(fake), chat(fake))
    assert fake.last.path == "/v1beta/models/gemini-2.0-flash:generateContent"


# --- request shapes: system prompt, sampling, tools ------------------------------------------------


def _full_request(model: str) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[
            ChatMessage(role="system", content="You are terse."),
            ChatMessage(role="user", content="Weather in Paris?"),
        ],
        temperature=1.5,
        top_p=0.9,
        max_tokens=256,
        stop=["END"],
        presence_penalty=0.5,
        frequency_penalty=0.25,
        tools=[WEATHER],
    )


async def test_openai_request_shape(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["openai"]
    await openai.complete(http, target(fake), _full_request("gpt-4o"))
    sent = fake.last
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = sent.body
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop"]) == (1.5, 0.9, 256, ["END"])
    assert (body["presence_penalty"], body["frequency_penalty"]) == (0.5, 0.25)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER.description,
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert "stream" not in body


async def test_anthropic_request_shape(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["claude"]
    await anthropic.complete(http, target(fake), _full_request("claude-sonnet-4-20250514"))
    sent = fake.last
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    body = sent.body
    assert body["system"] == "You are terse."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}]
    assert body["temperature"] == 1.0  # clamped to Anthropic's 0..1
    assert (body["top_p"], body["max_tokens"], body["stop_sequences"]) == (0.9, 256, ["END"])
    assert "presence_penalty" not in body and "frequency_penalty" not in body
    assert body["tools"] == [
        {"name": "get_weather", "description": WEATHER.description, "input_schema": WEATHER.parameters}
    ]


async def test_anthropic_max_tokens_defaults_to_1024(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["claude"]
    await anthropic.complete(http, target(fake), chat(fake))
    assert fake.last.body["max_tokens"] == 1024
    assert "system" not in fake.last.body


async def test_gemini_request_shape(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["gemini"]
    await gemini.complete(http, target(fake), _full_request("gemini-1.5-pro"))
    sent = fake.last
    assert sent.path == "/v1beta/models/gemini-1.5-pro:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert KEY not in sent.path and not sent.query
    body = sent.body
    assert body["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}]
    assert body["generationConfig"] == {
        "temperature": 1.5,
        "topP": 0.9,
        "maxOutputTokens": 256,
        "stopSequences": ["END"],
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
    }
    # JSON Schema reduced to Gemini's OpenAPI subset: no $schema / additionalProperties, nullable types.
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": WEATHER.description,
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "description": "City name"},
                            "unit": {"type": "string", "nullable": True, "enum": ["c", "f"]},
                        },
                        "required": ["city"],
                    },
                }
            ]
        }
    ]


def _tool_history(model: str) -> ChatRequest:
    """A turn that called two tools, their results, and the follow-up question."""
    calls = [
        ToolCall(id="call_a", name="get_weather", arguments='{"city": "Paris"}'),
        ToolCall(id="call_b", name="get_time", arguments=""),
    ]
    return ChatRequest(
        model=model,
        messages=[
            ChatMessage(role="system", content="sys"),
            ChatMessage(role="user", content="Weather and time?"),
            ChatMessage(role="assistant", content="Checking.", tool_calls=calls),
            ChatMessage(role="tool", content='{"temp": 21}', tool_call_id="call_a"),
            ChatMessage(role="tool", content="12:00", tool_call_id="call_b"),
        ],
        tools=[WEATHER],
    )


async def test_openai_sends_tool_history(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["openai"]
    await openai.complete(http, target(fake), _tool_history("gpt-4o"))
    assert fake.last.body["messages"][2:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
    ]


async def test_anthropic_sends_tool_history(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["claude"]
    await anthropic.complete(http, target(fake), _tool_history("claude-sonnet-4-20250514"))
    assert fake.last.body["system"] == "sys"
    assert fake.last.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather and time?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}},
            ],
        },
        # Both results in one user turn, as Anthropic requires.
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": '{"temp": 21}'},
                {"type": "tool_result", "tool_use_id": "call_b", "content": "12:00"},
            ],
        },
    ]


async def test_gemini_sends_tool_history(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["gemini"]
    await gemini.complete(http, target(fake), _tool_history("gemini-2.0-flash"))
    assert fake.last.body["systemInstruction"] == {"parts": [{"text": "sys"}]}
    assert fake.last.body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and time?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "12:00"}}},
            ],
        },
    ]


# --- tool calls in replies -----------------------------------------------------------------------

CALLS = [tool_call("get_weather", {"city": "Paris", "unit": "c"}), tool_call("get_time", {"tz": "Europe/Paris"})]


async def test_complete_parses_tool_calls(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(reply("Let me check.", tool_calls=CALLS))
    result = await adapter(fake).complete(http, target(fake), chat(fake, tools=[WEATHER]))
    assert result.content == "Let me check."
    assert result.finish_reason == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["get_weather", "get_time"]
    assert [json.loads(c.arguments) for c in result.tool_calls] == [c.arguments for c in CALLS]
    assert all(c.id for c in result.tool_calls)
    if fake.protocol != "gemini":  # Gemini sends no ids; the adapter makes its own
        assert [c.id for c in result.tool_calls] == [c.id for c in CALLS]


async def test_stream_assembles_tool_calls(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(stream(["Let", " me", " check."], tool_calls=CALLS))
    events = await collect(fake, http, chat(fake, tools=[WEATHER]))
    result = final(events)
    assert result.content == "Let me check."
    assert result.finish_reason == "tool_calls"
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert {d.index for d in deltas} == {0, 1}
    for index, call in enumerate(result.tool_calls):
        pieces = [d for d in deltas if d.index == index]
        assert pieces[0].name == call.name and pieces[0].id == call.id
        assert "".join(d.arguments_delta for d in pieces) == call.arguments
    assert [json.loads(c.arguments) for c in result.tool_calls] == [c.arguments for c in CALLS]
    if fake.protocol != "gemini":
        assert [c.id for c in result.tool_calls] == [c.id for c in CALLS]
        # OpenAI and Anthropic stream arguments in fragments; the fake splits them as they do.
        assert len(deltas) > len(CALLS)


async def test_stream_tool_call_only_reply(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(stream([], tool_calls=CALLS[:1]))
    result = final(await collect(fake, http, chat(fake, tools=[WEATHER])))
    assert result.content == ""
    assert [c.name for c in result.tool_calls] == ["get_weather"]


# --- errors --------------------------------------------------------------------------------------

ERROR_CASES = [
    (401, "auth", False),
    (403, "forbidden", False),
    (404, "model_not_found", False),
    (400, "bad_request", False),
    (422, "bad_request", False),
    (500, "server", True),
    (503, "server", True),
]


@pytest.mark.parametrize(("code", "kind", "retryable"), ERROR_CASES)
@pytest.mark.parametrize("streamed", [False, True])
async def test_http_status_maps_to_kind(
    fake: FakeProvider, http: httpx.AsyncClient, code: int, kind: str, retryable: bool, streamed: bool
) -> None:
    fake.script(status(code, message=f"upstream says {code}"))
    if streamed:
        error = await fail_stream(fake, http, chat(fake))
    else:
        error = await fail(adapter(fake).complete(http, target(fake), chat(fake)))
    assert (error.kind, error.status, error.retryable) == (kind, code, retryable)
    assert error.message == f"upstream says {code}"  # the provider's own message, from its error body
    assert error.retry_after is None


async def test_default_404_message_names_the_model(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(status(404))
    error = await fail(adapter(fake).complete(http, target(fake), chat(fake, model="no-such-model")))
    assert error.kind == "model_not_found"
    assert "no-such-model" in error.message


@pytest.mark.parametrize("streamed", [False, True])
async def test_429_retry_after_seconds(fake: FakeProvider, http: httpx.AsyncClient, streamed: bool) -> None:
    fake.script(status(429, headers={"Retry-After": "7"}))
    if streamed:
        error = await fail_stream(fake, http, chat(fake))
    else:
        error = await fail(adapter(fake).complete(http, target(fake), chat(fake)))
    assert (error.kind, error.status, error.retryable, error.retry_after) == ("rate_limited", 429, True, 7.0)


async def test_429_retry_after_http_date(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake.script(status(429, headers={"Retry-After": when}))
    error = await fail(adapter(fake).complete(http, target(fake), chat(fake)))
    assert error.kind == "rate_limited"
    assert error.retry_after is not None and 25 <= error.retry_after <= 31


async def test_429_without_retry_after(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(status(429))
    error = await fail(adapter(fake).complete(http, target(fake), chat(fake)))
    assert (error.kind, error.retry_after) == ("rate_limited", None)


async def test_gemini_retry_info_in_the_body(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["gemini"]
    body = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "21s"}],
        }
    }
    fake.script(status(429, body))
    error = await fail(gemini.complete(http, target(fake), chat(fake)))
    assert (error.kind, error.retry_after, error.code) == ("rate_limited", 21.0, "RESOURCE_EXHAUSTED")


async def test_wrong_key_is_auth_and_never_echoed(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    wrong = "sk-wrong-KEY-9876543210fedcba"
    for call in (
        adapter(fake).complete(http, target(fake, api_key=wrong), chat(fake)),
        collect(fake, http, chat(fake), api_key=wrong),
        adapter(fake).list_models(http, target(fake, api_key=wrong)),
    ):
        error = await fail(call)
        assert error.kind == "auth"
        # Google answers a bad key with 400 API_KEY_INVALID rather than 401.
        assert error.status == (400 if fake.protocol == "gemini" else 401)
        assert not error.retryable
        assert "****" in error.message  # the fake echoed the key; the adapter redacted it
        for text in (error.message, str(error), repr(error), *map(str, error.args)):
            assert wrong not in text


@pytest.mark.parametrize("code", [400, 401, 403, 404, 429, 500])
async def test_api_key_never_appears_in_an_error(fake: FakeProvider, http: httpx.AsyncClient, code: int) -> None:
    fake.script(status(code, message=f"bad key {KEY} " + "x" * 600))
    error = await fail(adapter(fake).complete(http, target(fake), chat(fake)))
    assert KEY not in error.message and KEY not in str(error) and KEY not in repr(error)
    assert len(error.message) <= 500


async def test_secret_custom_headers_are_redacted_too(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["openai"]
    fake.script(status(401, message="token gw-SECRET-TOKEN-42 is not valid"))
    tgt = target(fake, custom_headers={"X-Gateway-Token": "gw-SECRET-TOKEN-42"})
    error = await fail(openai.complete(http, tgt, chat(fake)))
    assert "gw-SECRET-TOKEN-42" not in error.message


async def test_non_json_error_body(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(status(502, "<html>Bad Gateway</html>"))
    error = await fail(adapter(fake).complete(http, target(fake), chat(fake)))
    assert (error.kind, error.status, error.retryable) == ("server", 502, True)
    assert "Bad Gateway" in error.message


async def test_openai_error_document_with_status_200(fakes: Fakes, http: httpx.AsyncClient) -> None:
    # Some gateways answer 200 with an error document.
    fake = fakes["openai"]
    fake.script(status(200, {"error": {"message": "You exceeded your quota", "type": "insufficient_quota"}}))
    error = await fail(openai.complete(http, target(fake), chat(fake)))
    assert (error.kind, error.message) == ("rate_limited", "You exceeded your quota")


@pytest.mark.parametrize("streamed", [False, True])
async def test_timeout(fake: FakeProvider, http: httpx.AsyncClient, streamed: bool) -> None:
    # The answer would come after 5 s: a timeout error (not that answer) shows the 200 ms limit held.
    fake.script(delay(5))
    if streamed:
        error = await fail_stream(fake, http, chat(fake), read_timeout_ms=200)
    else:
        error = await fail(adapter(fake).complete(http, target(fake, read_timeout_ms=200), chat(fake)))
    assert (error.kind, error.status, error.retryable) == ("timeout", None, True)


async def test_delay_then_answers(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(delay(0.05, reply("late")))
    result = await adapter(fake).complete(http, target(fake), chat(fake))
    assert result.content == "late"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_connection_refused(http: httpx.AsyncClient, protocol: Protocol) -> None:
    tgt = ProviderTarget(adapter_type=protocol, base_url=f"http://127.0.0.1:{_closed_port()}", api_key=KEY)
    request = ChatRequest(model=MODEL[protocol], messages=[ChatMessage(role="user", content="hi")])
    for call in (ADAPTERS[protocol].complete(http, tgt, request), ADAPTERS[protocol].list_models(http, tgt)):
        error = await fail(call)
        assert (error.kind, error.status, error.retryable) == ("connection", None, True)
    with pytest.raises(ProviderError) as info:
        [e async for e in ADAPTERS[protocol].stream(http, tgt, request)]
    assert info.value.kind == "connection"
    assert KEY not in str(info.value)


async def test_a_server_that_hangs_up_without_answering_is_a_connection_error(http: httpx.AsyncClient) -> None:
    # Accepts, reads the request, closes: retryable like a refused connection (another key or channel).
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        tgt = ProviderTarget(adapter_type="openai", base_url=f"http://127.0.0.1:{port}", api_key=KEY)
        request = ChatRequest(model=MODEL["openai"], messages=[ChatMessage(role="user", content="hi")])
        error = await fail(ADAPTERS["openai"].complete(http, tgt, request))
        assert (error.kind, error.status, error.retryable) == ("connection", None, True)
    finally:
        server.close()
        await server.wait_closed()


async def test_malformed_json(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(garbage())
    error = await fail(adapter(fake).complete(http, target(fake), chat(fake)))
    assert (error.kind, error.retryable) == ("bad_response", False)


async def test_malformed_stream(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(garbage())
    error = await fail_stream(fake, http, chat(fake))
    assert error.kind == "bad_response"


async def test_well_formed_json_of_the_wrong_shape(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(status(200, {"unexpected": True}))
    error = await fail(adapter(fake).complete(http, target(fake), chat(fake)))
    assert error.kind == "bad_response"


@pytest.mark.parametrize("abrupt", [True, False], ids=["dropped", "ended-cleanly"])
async def test_stream_broken_after_first_token(fake: FakeProvider, http: httpx.AsyncClient, abrupt: bool) -> None:
    fake.script(stream(["Hel", "lo", " world"], break_after=1, abrupt=abrupt))
    seen: list[StreamEvent] = []
    with pytest.raises(ProviderError) as info:
        async for event in adapter(fake).stream(http, target(fake), chat(fake)):
            seen.append(event)
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Hel"]
    assert not any(isinstance(e, StreamDone) for e in seen)
    assert (info.value.kind, info.value.partial_text) == ("bad_response", "Hel")
    assert not info.value.retryable


@pytest.mark.parametrize(("code", "kind"), [(500, "server"), (529, "server"), (429, "rate_limited")])
async def test_error_event_mid_stream(fake: FakeProvider, http: httpx.AsyncClient, code: int, kind: str) -> None:
    fake.script(stream(["Hel", "lo"], break_after=1, error=(code, "Overloaded, try later")))
    error = await fail_stream(fake, http, chat(fake))
    assert (error.kind, error.message, error.partial_text) == (kind, "Overloaded, try later", "Hel")
    assert error.retryable


async def test_interrupted_stream_read_timeout(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(stream(["a", "b"], interval=2))
    error = await fail_stream(fake, http, chat(fake), read_timeout_ms=200)
    assert (error.kind, error.partial_text) == ("timeout", "a")


async def test_stream_can_be_abandoned(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(stream(["a", "b", "c"]))
    async with contextlib.aclosing(adapter(fake).stream(http, target(fake), chat(fake))) as events:
        assert await anext(events) == TextDelta("a")
    # The connection went back to (or out of) the pool: the next call works.
    assert (await adapter(fake).complete(http, target(fake), chat(fake, "again"))).content == "again"


# --- model lists ---------------------------------------------------------------------------------


async def test_list_models(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    models = await adapter(fake).list_models(http, target(fake))
    expected = [m for m in fake.models if not (fake.protocol == "gemini" and "embedding" in m)]
    assert models == expected
    assert fake.last.method == "GET"
    assert fake.last.path == ("/v1beta/models" if fake.protocol == "gemini" else "/v1/models")


@pytest.mark.parametrize("protocol", ["claude", "gemini"])
async def test_list_models_follows_pages(fakes: Fakes, http: httpx.AsyncClient, protocol: Protocol) -> None:
    names = [f"model-{i}" for i in range(5)]
    fake = fakes[protocol]
    fake.models, fake.models_page_size = names, 2
    assert await adapter(fake).list_models(http, target(fake)) == names
    assert len(fake.requests) == 3


async def test_list_models_on_a_wrong_path_is_bad_request(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    error = await fail(adapter(fake).list_models(http, target(fake, base_url=fake.origin + "/nowhere")))
    assert (error.kind, error.status) == ("bad_request", 404)


async def test_list_models_errors(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    fake.script(status(503))
    error = await fail(adapter(fake).list_models(http, target(fake)))
    assert (error.kind, error.retryable) == ("server", True)


# --- base URLs, headers, clients -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "url", "expected"),
    [
        (openai, "https://api.openai.com", "https://api.openai.com/v1"),
        (openai, "https://api.openai.com/", "https://api.openai.com/v1"),
        (openai, "https://api.openai.com/v1/", "https://api.openai.com/v1"),
        (openai, "https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1"),
        (openai, "http://localhost:11434", "http://localhost:11434/v1"),
        (openai, "  HTTPS://gw.example.com/custom/path//  ", "https://gw.example.com/custom/path"),
        (anthropic, "https://api.anthropic.com", "https://api.anthropic.com/v1"),
        (anthropic, "https://proxy.example.com/anthropic/v1/", "https://proxy.example.com/anthropic/v1"),
        (gemini, "https://generativelanguage.googleapis.com", "https://generativelanguage.googleapis.com/v1beta"),
        (gemini, "https://generativelanguage.googleapis.com/v1", "https://generativelanguage.googleapis.com/v1"),
    ],
)
async def test_normalize_base_url(module: Any, url: str, expected: str) -> None:
    assert module.normalize_base_url(url) == expected


@pytest.mark.parametrize(
    "url", ["ftp://api.openai.com", "api.openai.com", "", "file:///etc/passwd", "https://", "https://h/v1?x=1"]
)
@pytest.mark.parametrize("module", [openai, anthropic, gemini])
async def test_normalize_base_url_rejects(module: Any, url: str) -> None:
    with pytest.raises(ValueError):
        module.normalize_base_url(url)


async def test_a_bare_host_reaches_the_default_path(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    result = await adapter(fake).complete(http, target(fake, base_url=fake.origin + "/"), chat(fake, "bare"))
    assert result.content == "bare"
    assert fake.last.path.startswith("/v1beta/" if fake.protocol == "gemini" else "/v1/")


async def test_custom_headers_are_sent(fake: FakeProvider, http: httpx.AsyncClient) -> None:
    tgt = target(fake, custom_headers={"X-Title": "chatbus", "HTTP-Referer": "https://example.com"})
    await adapter(fake).complete(http, tgt, chat(fake))
    await collect(fake, http, chat(fake), custom_headers=tgt.custom_headers)
    await adapter(fake).list_models(http, tgt)
    for sent in fake.requests:
        assert sent.headers["x-title"] == "chatbus"
        assert sent.headers["http-referer"] == "https://example.com"


async def test_openai_without_a_key_sends_no_authorization(fakes: Fakes, http: httpx.AsyncClient) -> None:
    fake = fakes["openai"]
    fake.api_key = None
    await openai.complete(http, target(fake, api_key=""), chat(fake))
    assert "authorization" not in fake.last.headers


async def test_provider_error_pickles_whole() -> None:
    error = ProviderError("rate_limited", f"slow down {KEY}", status=429, retry_after=3.0, secrets=[KEY])
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.kind, copy.status, copy.retry_after, copy.retryable) == ("rate_limited", 429, 3.0, True)
    assert copy.message == "slow down ****"


async def test_target_repr_hides_the_key() -> None:
    tgt = ProviderTarget(adapter_type="openai", base_url="https://api.openai.com", api_key=KEY)
    assert KEY not in repr(tgt) and KEY not in str(tgt)


async def test_registry_covers_every_adapter_type() -> None:
    assert set(ADAPTERS) == {"openai", "claude", "gemini"}
    assert ADAPTERS["claude"] is anthropic.ADAPTER
    tgt = ProviderTarget(adapter_type="gemini", base_url="https://generativelanguage.googleapis.com")
    assert adapter_for(tgt) is gemini.ADAPTER


async def test_http_clients_one_per_proxy() -> None:
    clients = HttpClients()

    def openai_target(**extra: Any) -> ProviderTarget:
        return ProviderTarget(adapter_type="openai", base_url="https://api.openai.com", api_key=KEY, **extra)

    direct = clients.client_for(openai_target())
    assert clients.client_for(openai_target(custom_headers={"a": "b"})) is direct
    assert direct.trust_env  # no proxy of its own: HTTP(S)_PROXY / NO_PROXY apply
    proxied = clients.client_for(openai_target(proxy="http://proxy.example:3128"))
    assert proxied is not direct
    assert clients.client_for(openai_target(proxy="http://proxy.example:3128")) is proxied
    other = clients.client_for(openai_target(proxy="http://other.example:8080"))
    assert len({id(direct), id(proxied), id(other)}) == 3
    assert len(clients) == 3
    await clients.aclose()
    assert direct.is_closed and proxied.is_closed and other.is_closed
    assert len(clients) == 0
    # A client asked for after aclose is a fresh one, not the closed one.
    fresh = clients.client_for(openai_target())
    assert fresh is not direct and not fresh.is_closed
    await clients.aclose()


async def test_http_clients_serve_real_calls(fake: FakeProvider) -> None:
    clients = HttpClients()
    try:
        tgt = target(fake)
        result = await adapter(fake).complete(clients.client_for(tgt), tgt, chat(fake, "pooled"))
        assert result.content == "pooled"
    finally:
        await clients.aclose()


async def test_http_clients_keep_no_cookie_a_provider_sets(fake: FakeProvider) -> None:
    # A client is shared by every channel of a proxy setting: a cookie one response sets must not ride
    # along on the next call (to this provider or another channel's), and keys are the only auth.
    clients = HttpClients()
    try:
        tgt = target(fake)
        http = clients.client_for(tgt)
        fake.script(status(429, headers={"set-cookie": "session=abc123; Path=/"}), reply("second"))
        await fail(adapter(fake).complete(http, tgt, chat(fake, "one")))
        assert (await adapter(fake).complete(http, tgt, chat(fake, "two"))).content == "second"
        assert [r.headers.get("cookie") for r in fake.requests] == [None, None]
        assert not http.cookies
    finally:
        await clients.aclose()


async def test_a_proxy_in_the_environment_carries_the_calls_of_channels_without_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP(S)_PROXY is how many deployments reach a provider at all; the fast transport must not bypass it."""
    seen: list[bytes] = []
    body = b'{"object":"list","data":[]}'

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n", 1)[0])
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    clients = HttpClients()
    try:
        target = ProviderTarget(adapter_type="openai", base_url="http://upstream.invalid/v1", api_key=KEY)
        response = await clients.client_for(target).get("http://upstream.invalid/v1/models")
        assert response.status_code == 200
        assert seen == [b"GET http://upstream.invalid/v1/models HTTP/1.1"]
    finally:
        await clients.aclose()
        server.close()
        await server.wait_closed()
