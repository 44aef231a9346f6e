"""Wire-neutral LLM types: what the chat engine speaks, whatever the provider's protocol (API.md §5-§6).

The provider adapters (`services/channels/providers`) translate these to and from the OpenAI, Anthropic
and Gemini wire formats. Tool-call arguments stay JSON *text* here, as OpenAI sends them, because a model
may stream or produce arguments that are not (yet) valid JSON and the engine decides what to do with them.
`finish_reason` is normalised to OpenAI's vocabulary: "stop", "length", "tool_calls", "content_filter"
(anything else the provider says is passed through lower-cased).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Role = Literal["system", "user", "assistant", "tool"]
AdapterType = Literal["openai", "claude", "gemini"]


class ToolCall(msgspec.Struct):
    id: str
    name: str
    arguments: str  # JSON text


class ToolSpec(msgspec.Struct):
    name: str
    description: str = ""
    parameters: dict[str, Any] = {}  # a JSON Schema object


class ChatMessage(msgspec.Struct, omit_defaults=True):
    role: Role
    content: str = ""
    tool_calls: list[ToolCall] | None = None  # assistant turns that called tools
    tool_call_id: str | None = None  # tool turns: which call this is the result of


class ChatRequest(msgspec.Struct, omit_defaults=True, kw_only=True):
    model: str
    messages: list[ChatMessage]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    tools: list[ToolSpec] | None = None


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatResult(msgspec.Struct, kw_only=True):
    content: str = ""
    tool_calls: list[ToolCall] = []
    usage: Usage | None = None  # None when the provider reported none
    model: str = ""
    finish_reason: str | None = None


class TextDelta(msgspec.Struct, tag="text_delta", tag_field="type"):
    text: str


class ToolCallDelta(msgspec.Struct, tag="tool_call_delta", tag_field="type", kw_only=True):
    """One piece of a streamed tool call. `index` orders the calls of one reply; `id` and `name` come with
    the first piece of a call, later pieces carry only more `arguments_delta` text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments_delta: str = ""


class StreamDone(msgspec.Struct, tag="done", tag_field="type"):
    result: ChatResult


StreamEvent = TextDelta | ToolCallDelta | StreamDone


class ProviderTarget(msgspec.Struct, kw_only=True):
    """Where and how to call one provider: the part of a channel the adapters need."""

    adapter_type: AdapterType
    base_url: str
    api_key: str = ""
    connect_timeout_ms: int = 10000
    read_timeout_ms: int = 120000
    proxy: str | None = None
    custom_headers: dict[str, str] = {}

    def __repr__(self) -> str:
        # A target ends up in log lines and tracebacks; the key must not.
        return (
            f"ProviderTarget(adapter_type={self.adapter_type!r}, base_url={self.base_url!r}, api_key='****', "
            f"connect_timeout_ms={self.connect_timeout_ms}, read_timeout_ms={self.read_timeout_ms}, "
            f"proxy={'****' if self.proxy and '@' in self.proxy else self.proxy!r})"
        )
