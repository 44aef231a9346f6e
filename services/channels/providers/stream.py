"""The assembly of a streamed reply (text and tool-call pieces) into its final `ChatResult`, and the small
conversions between the protocols' usage and tool-argument shapes."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.llm import ChatResult, TextDelta, ToolCall, ToolCallDelta, Usage
from services.channels.providers.http import encode_json


class _PendingCall:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


class StreamAssembler:
    """Collects a stream's pieces into the final result while the deltas pass through to the caller."""

    __slots__ = ("_calls", "_text", "finish_reason", "model", "usage")

    def __init__(self, model: str = "") -> None:
        self._text: list[str] = []
        self._calls: dict[int, _PendingCall] = {}
        self.model = model
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    @property
    def partial_text(self) -> str:
        return "".join(self._text)

    @property
    def has_tool_calls(self) -> bool:
        return bool(self._calls)

    def text(self, text: str) -> TextDelta:
        self._text.append(text)
        return TextDelta(text)

    def tool(self, index: int, id: str | None, name: str | None, arguments: str) -> ToolCallDelta:
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _PendingCall()
        # Some OpenAI-compatible servers repeat id/name on every piece; the first one counts.
        if id and not call.id:
            call.id = id
        if name and not call.name:
            call.name = name
        if arguments:
            call.arguments.append(arguments)
        return ToolCallDelta(index=index, id=id or None, name=name or None, arguments_delta=arguments)

    def result(self) -> ChatResult:
        calls = [
            ToolCall(id=call.id or f"call_{index}", name=call.name, arguments="".join(call.arguments) or "{}")
            for index, call in sorted(self._calls.items())
        ]
        return ChatResult(
            content="".join(self._text),
            tool_calls=calls,
            usage=self.usage,
            model=self.model,
            finish_reason=self.finish_reason,
        )


def make_usage(prompt: int, completion: int, total: int | None = None) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total or prompt + completion)


def json_text(value: Any) -> str:
    """Tool arguments as JSON text, for protocols that send them as objects."""
    return encode_json(value).decode()


def args_object(arguments: str) -> dict[str, Any]:
    """JSON-text arguments as the object Anthropic and Gemini want. A model can produce arguments that are
    not a JSON object; they are wrapped rather than dropped so the history sent back stays faithful."""
    if not arguments.strip():
        return {}
    try:
        value = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}
