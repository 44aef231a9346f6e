"""The OpenAI Chat Completions protocol (also spoken by most self-hosted and gateway servers):
`POST {base}/chat/completions`, `GET {base}/models`, `Authorization: Bearer <key>`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import httpx
import msgspec

from schemas.llm import ChatMessage, ChatRequest, ChatResult, ProviderTarget, StreamDone, StreamEvent, ToolCall, Usage
from services.channels.providers.base import Adapter
from services.channels.providers.errors import bad_response, error_from_payload, parse_error_body
from services.channels.providers.http import (
    decode_or_raise,
    encode_json,
    normalize_url,
    request_bytes,
    with_custom_headers,
)
from services.channels.providers.sse import sse_stream
from services.channels.providers.stream import StreamAssembler, json_text, make_usage

DEFAULT_PATH = "/v1"


def normalize_base_url(url: str) -> str:
    return normalize_url(url, DEFAULT_PATH)


def _headers(target: ProviderTarget, *, stream: bool = False) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
    if target.api_key:  # local servers (Ollama, vLLM) often run without one
        headers["authorization"] = f"Bearer {target.api_key}"
    return with_custom_headers(headers, target)


def _message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def build_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "messages": [_message(m) for m in request.messages]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    # `max_tokens` rather than `max_completion_tokens`: the one every OpenAI-compatible server accepts.
    for name in ("temperature", "top_p", "max_tokens", "stop", "presence_penalty", "frequency_penalty"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters or {"type": "object", "properties": {}},
                },
            }
            for tool in request.tools
        ]
    return body


# --- wire shapes we read (unknown fields are ignored) ---


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _Function(msgspec.Struct):
    name: str | None = None
    # Some compatible servers send an object instead of JSON text.
    arguments: str | dict[str, Any] | None = None


class _ToolCall(msgspec.Struct):
    id: str | None = None
    index: int | None = None
    function: _Function | None = None


class _Message(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    message: _Message
    finish_reason: str | None = None


class _Response(msgspec.Struct):
    choices: list[_Choice]
    model: str = ""
    usage: _Usage | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _ChunkChoice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    choices: list[_ChunkChoice] = []
    model: str = ""
    usage: _Usage | None = None
    error: Any = None


_response_decoder = msgspec.json.Decoder(_Response)
_chunk_decoder = msgspec.json.Decoder(_Chunk)
_models_decoder = msgspec.json.Decoder(dict[str, Any])


def _arguments(value: str | dict[str, Any] | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json_text(value)


def _usage(usage: _Usage | None) -> Usage | None:
    if usage is None:
        return None
    return make_usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)


async def complete(http: httpx.AsyncClient, target: ProviderTarget, request: ChatRequest) -> ChatResult:
    url = f"{normalize_base_url(target.base_url)}/chat/completions"
    raw = await request_bytes(
        http, "POST", url, target, headers=_headers(target), body=encode_json(build_body(request, stream=False))
    )
    response = decode_or_raise(_response_decoder, raw, target)
    if not response.choices:
        raise bad_response(target, "response has no choices")
    choice = response.choices[0]
    calls = [
        ToolCall(
            id=call.id or f"call_{i}",
            name=(call.function.name if call.function else None) or "",
            arguments=_arguments(call.function.arguments if call.function else None) or "{}",
        )
        for i, call in enumerate(choice.message.tool_calls or [])
    ]
    return ChatResult(
        content=choice.message.content or "",
        tool_calls=calls,
        usage=_usage(response.usage),
        model=response.model or request.model,
        finish_reason=choice.finish_reason,
    )


async def stream(
    http: httpx.AsyncClient, target: ProviderTarget, request: ChatRequest
) -> AsyncGenerator[StreamEvent, None]:
    url = f"{normalize_base_url(target.base_url)}/chat/completions"
    body = encode_json(build_body(request, stream=True))
    assembler = StreamAssembler(request.model)
    done = False
    events = sse_stream(http, url, target, headers=_headers(target, stream=True), body=body, assembler=assembler)
    async with aclosing(events):
        async for event in events:
            if event.data == "[DONE]":
                done = True
                break
            try:
                chunk = _chunk_decoder.decode(event.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise bad_response(
                    target, f"malformed stream chunk: {exc}", partial_text=assembler.partial_text
                ) from exc
            if chunk.error is not None:
                upstream = parse_error_body(encode_json({"error": chunk.error}))
                if upstream is not None:
                    raise error_from_payload(upstream, target, partial_text=assembler.partial_text)
            if chunk.model:
                assembler.model = chunk.model
            if chunk.usage is not None:
                assembler.usage = _usage(chunk.usage)
            for choice in chunk.choices[:1]:
                delta = choice.delta
                if delta is not None:
                    if delta.content:
                        yield assembler.text(delta.content)
                    for position, call in enumerate(delta.tool_calls or []):
                        function = call.function
                        yield assembler.tool(
                            call.index if call.index is not None else position,
                            call.id,
                            function.name if function else None,
                            _arguments(function.arguments if function else None),
                        )
                if choice.finish_reason:
                    assembler.finish_reason = choice.finish_reason
    # Servers that omit `[DONE]` still close with a finish_reason; without either the reply is cut short.
    if not done and assembler.finish_reason is None:
        raise bad_response(target, "stream ended before [DONE]", partial_text=assembler.partial_text)
    yield StreamDone(assembler.result())


async def list_models(http: httpx.AsyncClient, target: ProviderTarget) -> list[str]:
    url = f"{normalize_base_url(target.base_url)}/models"
    raw = await request_bytes(http, "GET", url, target, headers=_headers(target), model_route=False)
    doc = decode_or_raise(_models_decoder, raw, target)
    data = doc.get("data")
    if not isinstance(data, list):
        raise bad_response(target, "model list has no `data` array")
    return [item["id"] for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]


ADAPTER = Adapter("openai", complete, stream, list_models, normalize_base_url)
