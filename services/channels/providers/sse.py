"""A hand-written server-sent-events reader, and the streamed POST that feeds it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, NamedTuple

import httpx

from schemas.llm import ProviderTarget
from services.channels.providers.errors import (
    bad_response,
    error_from_payload,
    error_from_response,
    parse_error_body,
    transport_error,
)
from services.channels.providers.http import parsed_url, timeout_for

if TYPE_CHECKING:
    from services.channels.providers.stream import StreamAssembler


class SSEEvent(NamedTuple):
    event: str
    data: str


async def iter_sse(lines: AsyncIterator[str]) -> AsyncIterator[SSEEvent]:
    """Server-sent events from a line iterator: `event:` and `data:` fields, a blank line ends an event."""
    event = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SSEEvent(event or "message", "\n".join(data))
            event = ""
            data = []
            continue
        if line[0] == ":":
            continue  # comment / keep-alive
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    # The SSE spec drops an unterminated last event, but some OpenAI-compatible servers end with
    # `data: [DONE]` and no blank line; a truly truncated event fails to decode and is caught there.
    if data:
        yield SSEEvent(event or "message", "\n".join(data))


async def sse_stream(
    http: httpx.AsyncClient,
    url: str,
    target: ProviderTarget,
    *,
    headers: dict[str, str],
    body: bytes,
    assembler: StreamAssembler,
) -> AsyncGenerator[SSEEvent, None]:
    """POST and yield the answer's SSE events. Close it (contextlib.aclosing) to release the connection."""
    started = False
    try:
        async with http.stream(
            "POST", parsed_url(url), content=body, headers=headers, timeout=timeout_for(target)
        ) as response:
            if not 200 <= response.status_code < 300:
                await response.aread()
                raise error_from_response(response, target)
            if response.headers.get("content-type", "").startswith("application/json"):
                # Asked for a stream, got a document: a gateway's error with status 200, or garbage.
                raw = await response.aread()
                upstream = parse_error_body(raw)
                if upstream is not None and upstream.message:
                    raise error_from_payload(upstream, target)
                raise bad_response(target, f"expected an event stream, got JSON: {raw[:200]!r}")
            started = True
            async for event in iter_sse(response.aiter_lines()):
                yield event
    except httpx.TransportError as exc:
        raise transport_error(exc, target, started=started, partial_text=assembler.partial_text) from exc
