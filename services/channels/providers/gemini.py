"""The Gemini API protocol: `POST {base}/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
`GET {base}/models`, key in `x-goog-api-key` (never in the URL, where it would reach logs)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import httpx
import msgspec

from schemas.llm import ChatRequest, ChatResult, ProviderTarget, StreamDone, StreamEvent, ToolCall, ToolSpec, Usage
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
from services.channels.providers.stream import StreamAssembler, args_object, json_text, make_usage

DEFAULT_PATH = "/v1beta"
MAX_MODEL_PAGES = 50

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
# The OpenAPI subset Gemini's `parameters` accepts; anything else (`additionalProperties`, `$schema`, ...)
# makes it answer 400, and tool schemas from MCP servers routinely carry such keys.
_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)


def normalize_base_url(url: str) -> str:
    return normalize_url(url, DEFAULT_PATH)


def _headers(target: ProviderTarget, *, stream: bool = False) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
    if target.api_key:
        headers["x-goog-api-key"] = target.api_key
    return with_custom_headers(headers, target)


def _model_path(model: str) -> str:
    # `tunedModels/x` keeps its own collection; a bare name lives under `models/`.
    return model if "/" in model else f"models/{model}"


def gemini_schema(schema: Any) -> Any:
    """A JSON Schema reduced to what Gemini accepts; `type: [T, "null"]` becomes `type: T, nullable`."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: gemini_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = gemini_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [gemini_schema(sub) for sub in value]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) < len(value):
                out["nullable"] = True
            if types:
                out["type"] = types[0]
        else:
            out[key] = value
    return out


def _declaration(tool: ToolSpec) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
    # An OBJECT with no properties is rejected; a tool without arguments simply has no `parameters`.
    if tool.parameters.get("properties"):
        declaration["parameters"] = gemini_schema(tool.parameters)
    return declaration


def _response_object(content: str) -> dict[str, Any]:
    """functionResponse.response must be an object: a JSON object result as is, anything else wrapped."""
    try:
        value = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return {"content": content}
    return value if isinstance(value, dict) else {"content": value}


def build_body(request: ChatRequest) -> dict[str, Any]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    # Gemini answers a tool result by function name, where the wire-neutral history keeps the call id.
    names: dict[str, str] = {}
    for message in request.messages:
        parts: list[dict[str, Any]] = []
        if message.role == "system":
            if message.content:
                system.append(message.content)
            continue
        if message.role == "tool":
            role = "user"
            call_id = message.tool_call_id or ""
            response = {"name": names.get(call_id, call_id), "response": _response_object(message.content)}
            parts.append({"functionResponse": response})
        else:
            role = "model" if message.role == "assistant" else "user"
            if message.content:
                parts.append({"text": message.content})
            for call in message.tool_calls or []:
                names[call.id] = call.name
                parts.append({"functionCall": {"name": call.name, "args": args_object(call.arguments)}})
        if not parts:
            continue  # Gemini rejects a turn without parts
        # Consecutive turns of one role merge: parallel tool results must come back as one user turn.
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config: dict[str, Any] = {}
    for name, key in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("max_tokens", "maxOutputTokens"),
        ("stop", "stopSequences"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = getattr(request, name)
        if value is not None:
            config[key] = value
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(tool) for tool in request.tools]}]
    return body


# --- wire shapes we read ---


class _FunctionCall(msgspec.Struct):
    name: str = ""
    args: dict[str, Any] | None = None
    id: str | None = None


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    function_call: _FunctionCall | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None


class _UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0
    total_token_count: int = 0


class _PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class _Response(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _UsageMetadata | None = None
    model_version: str = ""
    prompt_feedback: _PromptFeedback | None = None
    error: Any = None


class _Model(msgspec.Struct, rename="camel"):
    name: str
    supported_generation_methods: list[str] | None = None


class _ModelPage(msgspec.Struct, rename="camel"):
    models: list[_Model] = []
    next_page_token: str | None = None


_response_decoder = msgspec.json.Decoder(_Response)
_models_decoder = msgspec.json.Decoder(_ModelPage)


def _usage(meta: _UsageMetadata | None) -> Usage | None:
    if meta is None:
        return None
    # Thinking tokens are billed as output, and totalTokenCount includes them.
    completion = meta.candidates_token_count + meta.thoughts_token_count
    return make_usage(meta.prompt_token_count, completion, meta.total_token_count)


def _finish(reason: str | None, has_tool_calls: bool) -> str | None:
    if reason is None:
        return None
    if reason == "STOP" and has_tool_calls:
        return "tool_calls"  # Gemini has no distinct reason for "stopped to call tools"
    return _FINISH_REASONS.get(reason, reason.lower())


def _call_id(call: _FunctionCall) -> str:
    # Older Gemini versions give calls no id; the engine needs one to pair results with calls.
    return call.id or f"call_{secrets.token_hex(12)}"


def _raise_if_error(response: _Response, target: ProviderTarget, partial_text: str = "") -> None:
    if response.error is not None:
        upstream = parse_error_body(encode_json({"error": response.error}))
        if upstream is not None:
            raise error_from_payload(upstream, target, partial_text=partial_text)


async def complete(http: httpx.AsyncClient, target: ProviderTarget, request: ChatRequest) -> ChatResult:
    url = f"{normalize_base_url(target.base_url)}/{_model_path(request.model)}:generateContent"
    body = encode_json(build_body(request))
    raw = await request_bytes(http, "POST", url, target, headers=_headers(target), body=body)
    response = decode_or_raise(_response_decoder, raw, target)
    _raise_if_error(response, target)
    if not response.candidates:
        if response.prompt_feedback is not None and response.prompt_feedback.block_reason:
            # The prompt itself was blocked: an empty, filtered reply rather than a broken one.
            return ChatResult(
                usage=_usage(response.usage_metadata),
                model=response.model_version or request.model,
                finish_reason="content_filter",
            )
        raise bad_response(target, "response has no candidates")
    candidate = response.candidates[0]
    parts = candidate.content.parts if candidate.content else []
    calls = [
        ToolCall(id=_call_id(call), name=call.name, arguments=json_text(call.args or {}))
        for call in (p.function_call for p in parts)
        if call is not None
    ]
    return ChatResult(
        content="".join(p.text for p in parts if p.text and not p.thought),
        tool_calls=calls,
        usage=_usage(response.usage_metadata),
        model=response.model_version or request.model,
        finish_reason=_finish(candidate.finish_reason, bool(calls)),
    )


async def stream(
    http: httpx.AsyncClient, target: ProviderTarget, request: ChatRequest
) -> AsyncGenerator[StreamEvent, None]:
    url = f"{normalize_base_url(target.base_url)}/{_model_path(request.model)}:streamGenerateContent?alt=sse"
    assembler = StreamAssembler(request.model)
    finish: str | None = None
    calls = 0
    body = encode_json(build_body(request))
    events = sse_stream(http, url, target, headers=_headers(target, stream=True), body=body, assembler=assembler)
    async with aclosing(events):
        async for sse in events:
            try:
                response = _response_decoder.decode(sse.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise bad_response(
                    target, f"malformed stream chunk: {exc}", partial_text=assembler.partial_text
                ) from exc
            _raise_if_error(response, target, assembler.partial_text)
            if response.model_version:
                assembler.model = response.model_version
            if response.usage_metadata is not None:
                assembler.usage = _usage(response.usage_metadata)
            if response.prompt_feedback is not None and response.prompt_feedback.block_reason:
                finish = "SAFETY"
            for candidate in response.candidates[:1]:
                for part in candidate.content.parts if candidate.content else []:
                    if part.function_call is not None:
                        call = part.function_call
                        # Gemini sends each call whole, so one delta carries all of its arguments.
                        yield assembler.tool(calls, _call_id(call), call.name, json_text(call.args or {}))
                        calls += 1
                    elif part.text and not part.thought:
                        yield assembler.text(part.text)
                if candidate.finish_reason:
                    finish = candidate.finish_reason
    # Gemini sends no end marker: the last chunk carries finishReason, so a stream without one was cut.
    if finish is None:
        raise bad_response(target, "stream ended without a finishReason", partial_text=assembler.partial_text)
    assembler.finish_reason = _finish(finish, assembler.has_tool_calls)
    yield StreamDone(assembler.result())


async def list_models(http: httpx.AsyncClient, target: ProviderTarget) -> list[str]:
    url = f"{normalize_base_url(target.base_url)}/models"
    models: list[str] = []
    params = {"pageSize": "1000"}
    for _ in range(MAX_MODEL_PAGES):
        raw = await request_bytes(http, "GET", url, target, headers=_headers(target), params=params, model_route=False)
        page = decode_or_raise(_models_decoder, raw, target)
        for model in page.models:
            methods = model.supported_generation_methods
            # Embedding and other non-chat models cannot serve a chat; list only what can.
            if methods is None or "generateContent" in methods:
                models.append(model.name.removeprefix("models/"))
        if not page.next_page_token:
            break
        params = {"pageSize": "1000", "pageToken": page.next_page_token}
    return models


ADAPTER = Adapter("gemini", complete, stream, list_models, normalize_base_url)
