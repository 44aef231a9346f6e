"""Fake LLM providers speaking the real OpenAI, Anthropic and Gemini wire protocols (DESIGN.md "Tests":
a provider is a local HTTP server, not a mock of our own client).

A `FakeProvider` is a raw ASGI app served by uvicorn inside the caller's event loop on 127.0.0.1:<free
port>. Each request takes the next scripted behaviour, or, when none is left, the default: echo the last
user message at once. It is instant by default, so benchmarks use it as the "local instant LLM".

    async with FakeProvider("claude", api_key="sk-test") as fake:
        fake.script(status(429, headers={"retry-after": "7"}), stream(["Hel", "lo"], break_after=1))
        ...  # call fake.base_url; then assert on fake.requests

Scripted behaviours apply to whatever route the next request hits; `reply`/`stream` on a model-list
route answer with the model list. Unscripted, a message with `<<tool:NAME {args}>>` makes the fake ask
for that tool, and a request ending with a tool result is answered `tool said: <result>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

import msgspec
import uvicorn

from tests.waiting import wait_until

Protocol = Literal["openai", "claude", "gemini"]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_MODELS: dict[str, list[str]] = {
    "openai": ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"],
    "claude": ["claude-3-5-haiku-20241022", "claude-sonnet-4-20250514"],
    "gemini": ["gemini-2.0-flash", "gemini-1.5-pro", "text-embedding-004"],
}
PREFIX: dict[str, str] = {"openai": "/v1", "claude": "/v1", "gemini": "/v1beta"}


# --- behaviours ----------------------------------------------------------------------------------


@dataclass
class FakeToolCall:
    name: str
    arguments: dict[str, Any]
    id: str


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    usage: tuple[int, int] | None = None  # (prompt, completion); None: counted from the texts
    finish_reason: str | None = None  # in the protocol's own vocabulary; None: the natural one


@dataclass
class Stream:
    tokens: list[str]
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    usage: tuple[int, int] | None = None
    break_after: int | None = None  # send this many tokens, then stop without the terminal marker
    abrupt: bool = True  # break by dropping the connection (else: end the body cleanly, unfinished)
    error: tuple[int, str] | None = None  # after the tokens, the protocol's in-stream error event
    interval: float = 0.0  # seconds between tokens


@dataclass
class Status:
    code: int
    body: Any = None  # dict/list: JSON; str/bytes: raw; None: the protocol's error document
    headers: dict[str, str] = field(default_factory=dict)
    message: str | None = None


@dataclass
class Delay:
    seconds: float
    then: Behaviour | None = None  # None: the default echo


@dataclass
class Garbage:
    pass


Behaviour = Reply | Stream | Status | Delay | Garbage


# The default behaviour asks for a tool when the user's message contains `<<tool:NAME {json args}>>`,
# and answers `tool said: <result>` to the tool result it is then sent: an agent in one marker.
TOOL_MARKER = re.compile(r"<<tool:([A-Za-z0-9_-]+)(?: (\{.*?\}))?>>")


def tool_call(name: str, arguments: dict[str, Any] | None = None, id: str | None = None) -> FakeToolCall:
    return FakeToolCall(name, arguments or {}, id or f"call_{name}_{time.monotonic_ns() % 10**9}")


def reply(
    text: str = "",
    *,
    tool_calls: list[FakeToolCall] | None = None,
    usage: tuple[int, int] | None = None,
    finish_reason: str | None = None,
) -> Reply:
    """A complete answer; a streaming request gets it split into word tokens."""
    return Reply(text, tool_calls or [], usage, finish_reason)


def stream(
    tokens: list[str],
    *,
    tool_calls: list[FakeToolCall] | None = None,
    usage: tuple[int, int] | None = None,
    break_after: int | None = None,
    abrupt: bool = True,
    error: tuple[int, str] | None = None,
    interval: float = 0.0,
) -> Stream:
    """An answer in exactly these tokens; a non-streaming request gets them joined."""
    return Stream(list(tokens), tool_calls or [], usage, break_after, abrupt, error, interval)


def status(code: int, body: Any = None, headers: dict[str, str] | None = None, *, message: str | None = None) -> Status:
    return Status(code, body, headers or {}, message)


def delay(seconds: float, then: Behaviour | None = None) -> Delay:
    """Wait before answering (gives up early if the client goes away)."""
    return Delay(seconds, then)


def garbage() -> Garbage:
    """Status 200 with a body that is not valid JSON (a stream: an event that is not)."""
    return Garbage()


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any  # decoded JSON, or the raw text when it is not JSON


# --- protocol rendering --------------------------------------------------------------------------

_json = msgspec.json.encode
_TOKEN = re.compile(r"\s*\S+\s*$|\s*\S+")

_OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_document(protocol: Protocol, code: int, message: str) -> dict[str, Any]:
    """The error body each provider sends with an HTTP error status."""
    if protocol == "openai":
        type_, err_code = _OPENAI_ERRORS.get(code, ("server_error" if code >= 500 else "invalid_request_error", None))
        return {"error": {"message": message, "type": type_, "param": None, "code": err_code}}
    if protocol == "claude":
        type_ = _ANTHROPIC_ERRORS.get(code, "api_error" if code >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": type_, "message": message}}
    return {"error": {"code": code, "message": message, "status": _GOOGLE_STATUS.get(code, "UNKNOWN")}}


def _default_message(protocol: Protocol, code: int, model: str) -> str:
    if code == 404:
        if protocol == "openai":
            return f"The model `{model}` does not exist or you do not have access to it."
        if protocol == "claude":
            return f"model: {model}"
        return f"models/{model} is not found for API version v1beta, or is not supported for generateContent."
    if code == 429:
        return "Rate limit reached, please try again later."
    return f"fake upstream error {code}"


def _words(text: str) -> int:
    return max(1, len(text.split())) if text else 0


@dataclass
class _Answer:
    """A behaviour resolved against one request: what to say, in protocol-neutral terms."""

    model: str
    tokens: list[str]
    tool_calls: list[FakeToolCall]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


class _Dropped(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-body, as a crashed upstream would."""


class _HideDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _Dropped))


_hide_drops = _HideDrops()


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host (as chatbus.runtime's)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


# --- the fake ------------------------------------------------------------------------------------


class FakeProvider:
    def __init__(
        self,
        protocol: Protocol,
        *,
        api_key: str | None = None,
        models: list[str] | None = None,
        models_page_size: int = 1000,
    ) -> None:
        self.protocol: Protocol = protocol
        self._settings = (api_key, list(DEFAULT_MODELS[protocol] if models is None else models), models_page_size)
        self.behaviours: deque[Behaviour] = deque()
        self.requests: list[RecordedRequest] = []
        self.reset()
        self.port = 0
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    # lifecycle

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + PREFIX[self.protocol]

    async def start(self) -> FakeProvider:
        logger = logging.getLogger("uvicorn.error")
        if _hide_drops not in logger.filters:
            logger.addFilter(_hide_drops)
        # proto=IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
        # and without it Nagle holds a response body behind its unacknowledged headers for ~40 ms.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self,
            lifespan="off",
            log_config=None,  # leave the host's logging alone
            access_log=False,
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        server, task = self._server, self._task

        def started() -> bool:
            if task.done():
                task.result()
                raise RuntimeError("fake provider stopped during start-up")
            return server.started

        await wait_until(started, interval=0.005, message="the fake provider starts")
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None

    async def __aenter__(self) -> FakeProvider:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # scripting and inspection

    def reset(self) -> None:
        """Forget the script and the recorded requests, and restore the settings given at construction
        (a test may change `api_key`, `models` or `models_page_size` directly), so one running fake can
        serve many tests."""
        api_key, models, page_size = self._settings
        self.api_key = api_key  # None: any key (or none) is accepted
        self.models = list(models)
        self.models_page_size = page_size
        self.behaviours.clear()
        self.requests.clear()

    def script(self, *behaviours: Behaviour) -> None:
        self.behaviours.extend(behaviours)

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    # ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        body: Any = None
        if raw:
            try:
                body = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                body = raw.decode("utf-8", "replace")
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name, text = key.decode("latin-1").lower(), value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
        request = RecordedRequest(scope["method"], scope["path"], query, headers, body)
        self.requests.append(request)

        route = self._route(request)
        if route is None:
            await _send(send, 404, b"404 page not found", "text/plain")
            return
        kind, model, streaming = route
        if not self._authorised(request):
            await self._send_auth_error(send, request)
            return
        behaviour: Behaviour | None = self.behaviours.popleft() if self.behaviours else None
        while isinstance(behaviour, Delay):
            if await _client_left(receive, behaviour.seconds):
                return
            behaviour = behaviour.then
        if isinstance(behaviour, Status):
            await self._send_status(send, behaviour, model)
        elif isinstance(behaviour, Garbage):
            if streaming:
                prefix = b"event: message_start\n" if self.protocol == "claude" else b""
                await _send(send, 200, prefix + b'data: {"choices": [oops\n\n', "text/event-stream")
            else:
                await _send(send, 200, b'{"choices": [oops', "application/json")
        elif kind == "models":
            await self._send_models(send, request)
        else:
            answer = self._answer(behaviour, request, model)
            if streaming:
                plan = behaviour if isinstance(behaviour, Stream) else Stream(answer.tokens)
                await self._send_stream(send, receive, request, answer, plan)
            else:
                await _send(send, 200, _json(self._document(answer)), "application/json")

    def _route(self, request: RecordedRequest) -> tuple[str, str, bool] | None:
        prefix = PREFIX[self.protocol]
        path = unquote(request.path)
        if not path.startswith(prefix + "/"):
            return None
        rest = path[len(prefix) :]
        body = request.body if isinstance(request.body, dict) else {}
        if request.method == "GET" and rest == "/models":
            return "models", "", False
        if request.method != "POST":
            return None
        if self.protocol == "openai" and rest == "/chat/completions":
            return "chat", str(body.get("model", "")), bool(body.get("stream"))
        if self.protocol == "claude" and rest == "/messages":
            return "chat", str(body.get("model", "")), bool(body.get("stream"))
        if self.protocol == "gemini" and rest.startswith("/models/"):
            model, _, method = rest[len("/models/") :].partition(":")
            if method == "generateContent":
                return "chat", model, False
            if method == "streamGenerateContent":
                return "chat", model, request.query.get("alt") == "sse"
        return None

    def _presented_key(self, request: RecordedRequest) -> str:
        if self.protocol == "openai":
            return request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.protocol == "claude":
            return request.headers.get("x-api-key", "")
        return request.headers.get("x-goog-api-key", "")

    def _authorised(self, request: RecordedRequest) -> bool:
        return self.api_key is None or self._presented_key(request) == self.api_key

    async def _send_auth_error(self, send: Send, request: RecordedRequest) -> None:
        key = self._presented_key(request)
        # Echo the presented key, as some gateways do, so tests can check the client redacts it.
        if self.protocol == "gemini":
            # Google answers a wrong key with 400 INVALID_ARGUMENT and reason API_KEY_INVALID.
            doc = error_document("gemini", 400, f"API key not valid. Please pass a valid API key. ({key})")
            doc["error"]["details"] = [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ]
            await _send(send, 400, _json(doc), "application/json")
            return
        doc = error_document(self.protocol, 401, f"Incorrect API key provided: {key}")
        await _send(send, 401, _json(doc), "application/json")

    async def _send_status(self, send: Send, behaviour: Status, model: str) -> None:
        body = behaviour.body
        if body is None:
            message = behaviour.message or _default_message(self.protocol, behaviour.code, model)
            payload: bytes = _json(error_document(self.protocol, behaviour.code, message))
            content_type = "application/json"
        elif isinstance(body, bytes | str):
            payload = body.encode() if isinstance(body, str) else body
            content_type = "text/plain"
        else:
            payload, content_type = _json(body), "application/json"
        await _send(send, behaviour.code, payload, content_type, behaviour.headers)

    async def _send_models(self, send: Send, request: RecordedRequest) -> None:
        if self.protocol == "openai":
            data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in self.models]
            await _send(send, 200, _json({"object": "list", "data": data}), "application/json")
            return
        if self.protocol == "claude":
            limit = min(int(request.query.get("limit", "20")), self.models_page_size)
            start = 0
            if "after_id" in request.query and request.query["after_id"] in self.models:
                start = self.models.index(request.query["after_id"]) + 1
            page = self.models[start : start + limit]
            data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in page]
            doc = {
                "data": data,
                "has_more": start + limit < len(self.models),
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
            await _send(send, 200, _json(doc), "application/json")
            return
        size = min(int(request.query.get("pageSize", "50")), self.models_page_size)
        start = int(request.query.get("pageToken", "0") or 0)
        models = [
            {
                "name": f"models/{m}",
                "displayName": m,
                "supportedGenerationMethods": ["embedContent"] if "embedding" in m else ["generateContent"],
            }
            for m in self.models[start : start + size]
        ]
        gdoc: dict[str, Any] = {"models": models}
        if start + size < len(self.models):
            gdoc["nextPageToken"] = str(start + size)
        await _send(send, 200, _json(gdoc), "application/json")

    # answers

    def _last_user_text(self, request: RecordedRequest) -> str:
        body = request.body if isinstance(request.body, dict) else {}
        if self.protocol == "gemini":
            for content in reversed(body.get("contents") or []):
                if content.get("role") == "user":
                    texts = [p["text"] for p in content.get("parts", []) if isinstance(p.get("text"), str)]
                    if texts:
                        return "".join(texts)
            return ""
        for message in reversed(body.get("messages") or []):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"]
                if texts:
                    return "".join(texts)
        return ""

    def _tool_result(self, request: RecordedRequest) -> str | None:
        """The text of the tool result the request ends with, in this protocol's shape; None if it does not."""
        body = request.body if isinstance(request.body, dict) else {}
        if self.protocol == "gemini":
            contents = body.get("contents") or []
            parts = contents[-1].get("parts", []) if contents else []
            found = [p["functionResponse"] for p in parts if isinstance(p.get("functionResponse"), dict)]
            return "".join(_json(f.get("response")).decode() for f in found) if found else None
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        if self.protocol == "openai":
            return str(last.get("content") or "") if last.get("role") == "tool" else None
        content = last.get("content")
        if last.get("role") != "user" or not isinstance(content, list):
            return None
        found = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        return "".join(str(b.get("content", "")) for b in found) if found else None

    def _agent_answer(self, request: RecordedRequest, prompt_text: str) -> list[str]:
        """The default answer: echo the user, or after a tool round, say what the tool returned."""
        result = self._tool_result(request)
        return _split(f"tool said: {result}" if result is not None else (prompt_text or "ok"))

    def _answer(self, behaviour: Behaviour | None, request: RecordedRequest, model: str) -> _Answer:
        prompt_text = self._last_user_text(request)
        if isinstance(behaviour, Stream):
            tokens, calls, usage, finish = behaviour.tokens, behaviour.tool_calls, behaviour.usage, None
        elif isinstance(behaviour, Reply):
            tokens, calls, usage, finish = _split(behaviour.text), behaviour.tool_calls, behaviour.usage, None
            finish = behaviour.finish_reason
        else:
            tokens, calls, usage, finish = self._agent_answer(request, prompt_text), [], None, None
            asked = None if self._tool_result(request) is not None else TOOL_MARKER.search(prompt_text)
            if asked is not None:
                arguments = msgspec.json.decode(asked.group(2) or "{}")
                tokens, calls = [], [tool_call(asked.group(1), arguments)]
        if usage is None:
            usage = (_words(prompt_text) + 3, max(len(tokens), 1 if calls else 0) + 4 * len(calls))
        return _Answer(model, tokens, calls, usage[0], usage[1], finish)

    def _finish(self, answer: _Answer) -> str:
        if answer.finish_reason:
            return answer.finish_reason
        if self.protocol == "openai":
            return "tool_calls" if answer.tool_calls else "stop"
        if self.protocol == "claude":
            return "tool_use" if answer.tool_calls else "end_turn"
        return "STOP"

    def _usage(self, answer: _Answer) -> dict[str, int]:
        p, c = answer.prompt_tokens, answer.completion_tokens
        if self.protocol == "openai":
            return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        if self.protocol == "claude":
            return {"input_tokens": p, "output_tokens": c}
        return {"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c}

    def _document(self, answer: _Answer) -> dict[str, Any]:
        text = "".join(answer.tokens)
        if self.protocol == "openai":
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if answer.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": _json(c.arguments).decode()},
                    }
                    for c in answer.tool_calls
                ]
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": answer.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self._finish(answer)}],
                "usage": self._usage(answer),
            }
        if self.protocol == "claude":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in answer.tool_calls
            ]
            return {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": answer.model,
                "content": blocks,
                "stop_reason": self._finish(answer),
                "stop_sequence": None,
                "usage": self._usage(answer),
            }
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        parts += [{"functionCall": {"name": c.name, "args": c.arguments}} for c in answer.tool_calls]
        return {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": self._finish(answer), "index": 0}
            ],
            "usageMetadata": self._usage(answer),
            "modelVersion": answer.model,
        }

    # streams

    def _frames(self, request: RecordedRequest, answer: _Answer) -> tuple[list[bytes], list[bytes], list[bytes]]:
        """(head, one frame per token, tail) of the protocol's event stream."""
        if self.protocol == "openai":
            return self._openai_frames(request, answer)
        if self.protocol == "claude":
            return self._anthropic_frames(answer)
        return self._gemini_frames(answer)

    def _openai_frames(self, request: RecordedRequest, answer: _Answer) -> tuple[list[bytes], list[bytes], list[bytes]]:
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            doc = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": answer.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            return b"data: " + _json(doc) + b"\n\n"

        head = [chunk({"role": "assistant", "content": ""})]
        tokens = [chunk({"content": t}) for t in answer.tokens]
        tail: list[bytes] = []
        for i, call in enumerate(answer.tool_calls):
            start = {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            tail.append(chunk({"tool_calls": [start]}))
            for piece in _pieces(_json(call.arguments).decode()):
                tail.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
        tail.append(chunk({}, self._finish(answer)))
        body = request.body if isinstance(request.body, dict) else {}
        if (body.get("stream_options") or {}).get("include_usage"):
            doc = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": answer.model,
                "choices": [],
                "usage": self._usage(answer),
            }
            tail.append(b"data: " + _json(doc) + b"\n\n")
        tail.append(b"data: [DONE]\n\n")
        return head, tokens, tail

    def _anthropic_frames(self, answer: _Answer) -> tuple[list[bytes], list[bytes], list[bytes]]:
        def event(doc: dict[str, Any]) -> bytes:
            return b"event: " + doc["type"].encode() + b"\ndata: " + _json(doc) + b"\n\n"

        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": answer.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": 1},
        }
        head = [
            event({"type": "message_start", "message": message}),
            event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            event({"type": "ping"}),
        ]
        tokens = [
            event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}})
            for t in answer.tokens
        ]
        tail = [event({"type": "content_block_stop", "index": 0})]
        for i, call in enumerate(answer.tool_calls, start=1):
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            tail.append(event({"type": "content_block_start", "index": i, "content_block": block}))
            for piece in _pieces(_json(call.arguments).decode()):
                delta = {"type": "input_json_delta", "partial_json": piece}
                tail.append(event({"type": "content_block_delta", "index": i, "delta": delta}))
            tail.append(event({"type": "content_block_stop", "index": i}))
        tail.append(
            event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._finish(answer), "stop_sequence": None},
                    "usage": {"output_tokens": answer.completion_tokens},
                }
            )
        )
        tail.append(event({"type": "message_stop"}))
        return head, tokens, tail

    def _gemini_frames(self, answer: _Answer) -> tuple[list[bytes], list[bytes], list[bytes]]:
        def chunk(parts: list[dict[str, Any]], finish: str | None = None, final: bool = False) -> bytes:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            usage = self._usage(answer) if final else {"promptTokenCount": answer.prompt_tokens}
            doc = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": answer.model}
            # Google's SSE separates events with CRLF pairs.
            return b"data: " + _json(doc) + b"\r\n\r\n"

        tokens = [chunk([{"text": t}]) for t in answer.tokens]
        tail: list[bytes] = []
        if answer.tool_calls:
            tail.append(chunk([{"functionCall": {"name": c.name, "args": c.arguments}} for c in answer.tool_calls]))
        tail.append(chunk([{"text": ""}], self._finish(answer), final=True))
        return [], tokens, tail

    def _error_frame(self, code: int, message: str) -> bytes:
        if self.protocol == "claude":
            doc = error_document("claude", code, message)
            return b"event: error\ndata: " + _json(doc) + b"\n\n"
        if self.protocol == "openai":
            return b"data: " + _json(error_document("openai", code, message)) + b"\n\n"
        return b"data: " + _json(error_document("gemini", code, message)) + b"\r\n\r\n"

    async def _send_stream(
        self, send: Send, receive: Receive, request: RecordedRequest, answer: _Answer, plan: Stream
    ) -> None:
        head, tokens, tail = self._frames(request, answer)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )

        async def emit(frame: bytes) -> None:
            await send({"type": "http.response.body", "body": frame, "more_body": True})

        for frame in head:
            await emit(frame)
        count = len(tokens) if plan.break_after is None else min(plan.break_after, len(tokens))
        for i, frame in enumerate(tokens[:count]):
            if plan.interval and i and await _client_left(receive, plan.interval):
                return
            await emit(frame)
        if plan.error is not None:
            await emit(self._error_frame(*plan.error))
        elif plan.break_after is not None:
            if plan.abrupt:
                raise _Dropped
        else:
            for frame in tail:
                await emit(frame)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _split(text: str) -> list[str]:
    """Word tokens that concatenate back to the text: "a b" -> ["a", " b"]."""
    return _TOKEN.findall(text) if text.strip() else ([text] if text else [])


def _pieces(text: str) -> list[str]:
    """Tool arguments in a few fragments, as providers stream them (split inside JSON tokens too)."""
    step = max(1, len(text) // 3)
    return [text[i : i + step] for i in range(0, len(text), step)] or [""]


async def _send(send: Send, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
    raw_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": code, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _client_left(receive: Receive, seconds: float) -> bool:
    """Sleep, but return early (True) when the client disconnects, so a timed-out test leaves no work."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    waiter = asyncio.ensure_future(disconnected())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=seconds)
        return bool(done)
    finally:
        waiter.cancel()


async def start_fake(protocol: Protocol, **kwargs: Any) -> FakeProvider:
    return await FakeProvider(protocol, **kwargs).start()
