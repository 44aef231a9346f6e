"""The Anthropic Messages protocol: `POST {base}/messages`, `GET {base}/models`, `x-api-key`,
`anthropic-version: 2023-06-01`; the system prompt is a top-level field and `max_tokens` is required."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import httpx
import msgspec

from schemas.llm import ChatMessage, ChatRequest, ChatResult, ProviderTarget, StreamDone, StreamEvent, ToolCall, Usage
from services.channels.providers.base import Adapter
from services.channels.providers.errors import UpstreamError, bad_response, error_from_payload
from services.channels.providers.http import (
    decode_or_raise,
    encode_json,
    normalize_url,
    request_bytes,
    with_custom_headers,
)
from services.channels.providers.sse import sse_stream
from services.channels.providers.stream import StreamAssembler, args_object, json_text, make_usage

DEFAULT_PATH = "/v1"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
MAX_MODEL_PAGES = 50  # a misbehaving server that always says has_more must not loop us forever

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def normalize_base_url(url: str) -> str:
    return normalize_url(url, DEFAULT_PATH)


def _headers(target: ProviderTarget, *, stream: bool = False) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "anthropic-version": API_VERSION,
    }
    if target.api_key:
        headers["x-api-key"] = target.api_key
    return with_custom_headers(headers, target)


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": message.content}]
    # Anthropic rejects empty text blocks; an assistant turn that only called tools has none.
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    for call in message.tool_calls or []:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": args_object(call.arguments)})
    return blocks


def build_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    system = [m.content for m in request.messages if m.role == "system" and m.content]
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        # Tool results answering one assistant turn must travel together in the next user turn.
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if stream:
        body["stream"] = True
    if request.temperature is not None:
        # Anthropic's range is 0..1 where OpenAI's is 0..2; a preset written for the latter must not 400.
        body["temperature"] = min(request.temperature, 1.0)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = request.stop
    # presence/frequency penalties have no Anthropic equivalent and are left out.
    if request.tools:
        body["tools"] = [
            {
                "name": tool.name,
                "description": tool.description,
                "input_schema": tool.parameters or {"type": "object", "properties": {}},
            }
            for tool in request.tools
        ]
    return body


# --- wire shapes we read ---


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Block(msgspec.Struct):
    type: str
    text: str = ""
    id: str = ""
    name: str = ""
    input: Any = None


class _Message(msgspec.Struct):
    content: list[_Block] = []
    model: str = ""
    stop_reason: str | None = None
    usage: _Usage | None = None


class _Response(msgspec.Struct):
    content: list[_Block]
    model: str = ""
    stop_reason: str | None = None
    usage: _Usage | None = None


class _Delta(msgspec.Struct):
    type: str = ""
    text: str = ""
    partial_json: str = ""
    stop_reason: str | None = None


class _Error(msgspec.Struct):
    type: str = ""
    message: str = ""


class _Event(msgspec.Struct):
    type: str
    index: int = 0
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _Error | None = None


class _ModelPage(msgspec.Struct):
    data: list[dict[str, Any]]
    has_more: bool = False
    last_id: str | None = None


_response_decoder = msgspec.json.Decoder(_Response)
_event_decoder = msgspec.json.Decoder(_Event)
_models_decoder = msgspec.json.Decoder(_ModelPage)


class _Tokens:
    """Anthropic reports input tokens at the start and cumulative output tokens at the end. OpenAI's
    prompt_tokens includes cached input, so cache reads and writes are added in."""

    __slots__ = ("input", "output")

    def __init__(self) -> None:
        self.input: int | None = None
        self.output: int | None = None

    def add(self, usage: _Usage | None) -> None:
        if usage is None:
            return
        if usage.input_tokens is not None:
            self.input = (
                usage.input_tokens + (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
            )
        if usage.output_tokens is not None:
            self.output = usage.output_tokens

    def usage(self) -> Usage | None:
        if self.input is None and self.output is None:
            return None
        return make_usage(self.input or 0, self.output or 0)


def _finish(stop_reason: str | None) -> str | None:
    return _STOP_REASONS.get(stop_reason, stop_reason) if stop_reason else None


async def complete(http: httpx.AsyncClient, target: ProviderTarget, request: ChatRequest) -> ChatResult:
    url = f"{normalize_base_url(target.base_url)}/messages"
    raw = await request_bytes(
        http, "POST", url, target, headers=_headers(target), body=encode_json(build_body(request, stream=False))
    )
    response = decode_or_raise(_response_decoder, raw, target)
    tokens = _Tokens()
    tokens.add(response.usage)
    return ChatResult(
        content="".join(block.text for block in response.content if block.type == "text"),
        tool_calls=[
            ToolCall(id=block.id, name=block.name, arguments=json_text(block.input or {}))
            for block in response.content
            if block.type == "tool_use"
        ],
        usage=tokens.usage(),
        model=response.model or request.model,
        finish_reason=_finish(response.stop_reason),
    )


async def stream(
    http: httpx.AsyncClient, target: ProviderTarget, request: ChatRequest
) -> AsyncGenerator[StreamEvent, None]:
    url = f"{normalize_base_url(target.base_url)}/messages"
    body = encode_json(build_body(request, stream=True))
    assembler = StreamAssembler(request.model)
    tokens = _Tokens()
    tool_index: dict[int, int] = {}  # content block index -> tool call index
    done = False
    events = sse_stream(http, url, target, headers=_headers(target, stream=True), body=body, assembler=assembler)
    async with aclosing(events):
        async for sse in events:
            try:
                event = _event_decoder.decode(sse.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise bad_response(
                    target, f"malformed stream event: {exc}", partial_text=assembler.partial_text
                ) from exc
            kind = event.type
            if kind == "content_block_delta" and event.delta is not None:
                delta = event.delta
                if delta.type == "text_delta":
                    if delta.text:
                        yield assembler.text(delta.text)
                elif delta.type == "input_json_delta" and event.index in tool_index:
                    yield assembler.tool(tool_index[event.index], None, None, delta.partial_json)
                # thinking/signature deltas are not part of the reply.
            elif kind == "content_block_start" and event.content_block is not None:
                block = event.content_block
                if block.type == "tool_use":
                    index = tool_index[event.index] = len(tool_index)
                    # `input` here is always {} (the arguments follow as input_json_delta), so it is not sent.
                    yield assembler.tool(index, block.id, block.name, "")
                elif block.type == "text" and block.text:
                    yield assembler.text(block.text)
            elif kind == "message_start" and event.message is not None:
                if event.message.model:
                    assembler.model = event.message.model
                tokens.add(event.message.usage)
            elif kind == "message_delta":
                if event.delta is not None and event.delta.stop_reason:
                    assembler.finish_reason = _finish(event.delta.stop_reason)
                tokens.add(event.usage)
            elif kind == "message_stop":
                done = True
                break
            elif kind == "error":
                error = event.error or _Error()
                upstream = UpstreamError(message=error.message or None, type=error.type or None)
                raise error_from_payload(upstream, target, partial_text=assembler.partial_text)
            # ping, content_block_stop and unknown future events carry nothing we need.
    if not done:
        raise bad_response(target, "stream ended before message_stop", partial_text=assembler.partial_text)
    assembler.usage = tokens.usage()
    yield StreamDone(assembler.result())


async def list_models(http: httpx.AsyncClient, target: ProviderTarget) -> list[str]:
    url = f"{normalize_base_url(target.base_url)}/models"
    models: list[str] = []
    params = {"limit": "1000"}
    for _ in range(MAX_MODEL_PAGES):
        raw = await request_bytes(http, "GET", url, target, headers=_headers(target), params=params, model_route=False)
        page = decode_or_raise(_models_decoder, raw, target)
        models.extend(item["id"] for item in page.data if isinstance(item.get("id"), str))
        if not page.has_more or not page.last_id:
            break
        params = {"limit": "1000", "after_id": page.last_id}
    return models


ADAPTER = Adapter("claude", complete, stream, list_models, normalize_base_url)
