"""What the benchmark drives, in the order it runs: the HTTP scenarios (the bare ceiling, reads,
writes), then the chat turns against the local instant LLM, each through chatbus and directly.

Chat scenarios come in pairs measured back to back at the same concurrency, so the difference between
the two is what chatbus adds to a turn: `POST /api/chat` against `POST /v1/chat/completions` for the
full reply, `POST /api/chat/stream` against the same call with `"stream": true` for the first token."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CHAT_CHANNEL_ID = "bench-llm"
CHAT_MODEL = "m-1"
CHAT_MESSAGE = "hi"
# `str.format` templates for the load generator (literal braces doubled); no conversation id, so every
# chatbus turn starts a new conversation.
DIRECT_BODY = '{{"model":"' + CHAT_MODEL + '","messages":[{{"role":"user","content":"' + CHAT_MESSAGE + '"}}]}}'
DIRECT_STREAM_BODY = DIRECT_BODY[:-2] + ',"stream":true}}'
CHATBUS_BODY = '{{"message":"' + CHAT_MESSAGE + '"}}'
# A turn with one tool round: the fake asks for `calculate` on this marker, then answers with its result.
TOOL_MESSAGE = '<<tool:calculate {"expression": "6 * 7"}>>'
CHATBUS_TOOL_BODY = json.dumps({"message": TOOL_MESSAGE}).replace("{", "{{").replace("}", "}}")
LLM_HEADERS = {"Authorization": "Bearer sk-x"}  # as the worker sends it (the fake accepts any key)
SSE_HEADERS = {"Accept": "text/event-stream"}


@dataclass
class Scenario:
    name: str
    port: int
    path: str
    method: str = "GET"
    auth: bool = False
    body: str | None = None
    expect: int = 200
    baseline: bool = False
    # requestsPerMinute in the config while this scenario runs: 0 turns the global limiter off, a huge
    # limit keeps it counting every request without refusing any (its per-request cost).
    rate_limit: int = 1_000_000
    key: str = ""  # unique in the JSON; the name when empty
    group: str = "http"  # "http" | "chat": the table it is reported in
    concurrency: int | None = None  # keep-alive connections; None: --concurrency
    sse: str | None = None  # "openai" | "chatbus": an event stream, time to first token recorded
    via: str = ""  # chat: "direct" (the LLM itself) or "chatbus"
    headers: dict[str, str] = field(default_factory=dict)
    check: Callable[[Any], bool] | None = None  # the probe's decoded answer must pass this

    def __post_init__(self) -> None:
        self.key = self.key or self.name


def channel_body(base_url: str) -> dict[str, Any]:
    """`POST /api/channels`: the one channel of the run, pointing at the fake LLM."""
    return {
        "id": CHAT_CHANNEL_ID,
        "name": "bench instant LLM",
        "adapterType": "openai",
        "baseUrl": base_url,
        "apiKey": "sk-x",
        "models": [CHAT_MODEL],
    }


def _direct_answer(answer: Any) -> bool:
    try:
        return bool(answer["choices"][0]["message"]["content"] == CHAT_MESSAGE)
    except (KeyError, IndexError, TypeError):
        return False


def _chatbus_answer(answer: Any) -> bool:
    try:
        return bool(answer["data"]["response"] == CHAT_MESSAGE)
    except (KeyError, TypeError):
        return False


def _tool_answer(answer: Any) -> bool:
    try:
        return bool(answer["data"]["toolCalls"][0]["success"] and "42" in answer["data"]["response"])
    except (KeyError, IndexError, TypeError):
        return False


def http_scenarios(edge: int, bare: int) -> list[Scenario]:
    return [
        Scenario("GET /bare", bare, "/bare", baseline=True),
        Scenario("GET /api/presets (no limiter)", edge, "/api/presets", auth=True, rate_limit=0),
        Scenario("GET /api/presets", edge, "/api/presets", auth=True),
        Scenario(
            "POST /api/presets",
            edge,
            "/api/presets",
            method="POST",
            auth=True,
            expect=201,
            body='{{"id":"b-{tag}-{w}-{n}","name":"bench preset {w}-{n}"}}',
        ),
    ]


def chat_scenarios(edge: int, llm: int, concurrency: int) -> list[Scenario]:
    out = []
    for c in dict.fromkeys((1, concurrency)):  # c=1 for the clean per-turn number, then under load
        out += [
            Scenario(
                "direct  POST /v1/chat/completions",
                llm,
                "/v1/chat/completions",
                method="POST",
                body=DIRECT_BODY,
                key=f"chat-direct-json-c{c}",
                group="chat",
                concurrency=c,
                via="direct",
                headers=LLM_HEADERS,
                check=_direct_answer,
            ),
            Scenario(
                "chatbus POST /api/chat",
                edge,
                "/api/chat",
                method="POST",
                auth=True,
                body=CHATBUS_BODY,
                key=f"chat-chatbus-json-c{c}",
                group="chat",
                concurrency=c,
                via="chatbus",
                check=_chatbus_answer,
            ),
            Scenario(
                "direct  POST /v1/chat/completions stream",
                llm,
                "/v1/chat/completions",
                method="POST",
                body=DIRECT_STREAM_BODY,
                key=f"chat-direct-sse-c{c}",
                group="chat",
                concurrency=c,
                sse="openai",
                via="direct",
                headers={**LLM_HEADERS, **SSE_HEADERS},
            ),
            Scenario(
                "chatbus POST /api/chat/stream",
                edge,
                "/api/chat/stream",
                method="POST",
                auth=True,
                body=CHATBUS_BODY,
                key=f"chat-chatbus-sse-c{c}",
                group="chat",
                concurrency=c,
                sse="chatbus",
                via="chatbus",
                headers=SSE_HEADERS,
            ),
        ]
    # What one tool round adds to a turn: compare with "chatbus POST /api/chat" at c=1.
    out.append(
        Scenario(
            "chatbus POST /api/chat + 1 tool round",
            edge,
            "/api/chat",
            method="POST",
            auth=True,
            body=CHATBUS_TOOL_BODY,
            key="chat-chatbus-tool-c1",
            group="chat",
            concurrency=1,
            via="chatbus",
            check=_tool_answer,
        )
    )
    return out


def plan(edge: int, bare: int, llm: int, concurrency: int) -> list[Scenario]:
    return http_scenarios(edge, bare) + chat_scenarios(edge, llm, concurrency)
