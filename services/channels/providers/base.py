"""The adapter interface every provider protocol implements. The parts the adapters share live beside it:
`errors` (the error model), `http` (plumbing and pooled clients), `sse` (the event-stream reader) and
`stream` (assembly of a streamed reply)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import httpx

from schemas.llm import ChatRequest, ChatResult, ProviderTarget, StreamEvent

CompleteFn = Callable[[httpx.AsyncClient, ProviderTarget, ChatRequest], Awaitable[ChatResult]]
# An async generator rather than any AsyncIterator: callers that stop early must be able to aclose() it, which
# releases the HTTP connection at once instead of when the generator is garbage-collected.
StreamFn = Callable[[httpx.AsyncClient, ProviderTarget, ChatRequest], AsyncGenerator[StreamEvent, None]]
ListModelsFn = Callable[[httpx.AsyncClient, ProviderTarget], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class Adapter:
    """One wire protocol. `stream` yields deltas and always ends with StreamDone, or raises ProviderError."""

    name: str
    complete: CompleteFn
    stream: StreamFn
    list_models: ListModelsFn
    normalize_base_url: Callable[[str], str]
