"""What every provider adapter shares: the error model, HTTP plumbing, a hand-written SSE reader and the
assembly of a streamed reply into its final `ChatResult`."""

from __future__ import annotations

import contextlib
import email.utils
import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar
from urllib.parse import urlsplit

import httpx
import msgspec

from schemas.llm import (
    ChatRequest,
    ChatResult,
    ProviderTarget,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

ErrorKind = Literal[
    "auth",
    "forbidden",
    "model_not_found",
    "rate_limited",
    "server",
    "timeout",
    "connection",
    "bad_response",
    "bad_request",
]
RETRYABLE_KINDS: frozenset[str] = frozenset({"connection", "timeout", "rate_limited", "server"})
MAX_MESSAGE = 500
REDACTED = "****"
T = TypeVar("T")


class ProviderError(Exception):
    """A failed provider call, classified so the channel selector can decide to retry elsewhere.

    `message` is the provider's own error text when it sent one (truncated, with every secret of the
    target redacted); `partial_text` is what a stream had produced before it failed."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        code: str | None = None,
        partial_text: str = "",
        secrets: Iterable[str] = (),
    ) -> None:
        # Redact before truncating: cutting first could leave a key's prefix that no longer matches.
        for secret in secrets:
            if secret:
                message = message.replace(secret, REDACTED)
        message = message[:MAX_MESSAGE]
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.code = code
        self.partial_text = partial_text

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.kind}{status}: {self.message}"

    def __repr__(self) -> str:
        return f"ProviderError({self.kind!r}, {self.message!r}, status={self.status!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The default pickling calls cls(*args) with the message alone; keep every field (already redacted).
        return (_rebuild_error, (self.kind, self.message, self.status, self.retry_after, self.code, self.partial_text))


def _rebuild_error(
    kind: ErrorKind, message: str, status: int | None, retry_after: float | None, code: str | None, partial: str
) -> ProviderError:
    return ProviderError(kind, message, status=status, retry_after=retry_after, code=code, partial_text=partial)


def secrets_of(target: ProviderTarget) -> tuple[str, ...]:
    """The strings no error message may show: the key, and custom header values that look like credentials
    (an Azure-style `api-key` header, a gateway token)."""
    found = [target.api_key] if target.api_key else []
    for name, value in target.custom_headers.items():
        lowered = name.lower()
        if value and any(word in lowered for word in ("key", "token", "auth", "secret")):
            found.append(value)
            # `Authorization: Bearer xyz` also leaks through its credential part alone.
            _, _, credential = value.partition(" ")
            if credential:
                found.append(credential)
    return tuple(found)


# --- errors from HTTP responses and payloads -----------------------------------------------------


@dataclass(slots=True)
class UpstreamError:
    """The useful parts of a provider's JSON error body, whatever its protocol."""

    message: str | None = None
    type: str | None = None  # OpenAI/Anthropic `type`, Google `status`, or a string `code`
    reason: str | None = None  # Google `details[].reason`, e.g. API_KEY_INVALID
    status: int | None = None  # a numeric code inside the body (Google, some OpenAI-compatible servers)
    retry_delay: float | None = None  # Google RetryInfo.retryDelay
    # Every string label, in order: OpenAI's 429 says type "requests" but code "rate_limit_exceeded".
    labels: list[str] = field(default_factory=list)


def parse_error_body(body: bytes | str) -> UpstreamError | None:
    """OpenAI `{error:{message,type,code}}`, Anthropic `{type:"error", error:{type,message}}`, Google
    `{error:{code,message,status,details}}` (sometimes inside a list), and the looser shapes of
    OpenAI-compatible servers (`{message}`, `{detail}`, `{error:"text"}`). None when not JSON."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(doc, list) and doc:
        doc = doc[0]
    if not isinstance(doc, dict):
        return None
    err = doc.get("error", doc)
    if isinstance(err, str):
        return UpstreamError(message=err)
    if not isinstance(err, dict):
        return UpstreamError()
    out = UpstreamError()
    message = err.get("message") or doc.get("message") or doc.get("detail")
    if isinstance(message, str):
        out.message = message
    elif message is not None:
        out.message = msgspec.json.encode(message).decode()
    for key in ("type", "status", "code"):
        value = err.get(key)
        if isinstance(value, str) and value:
            out.labels.append(value)
        elif isinstance(value, int) and not isinstance(value, bool) and out.status is None:
            out.status = value
    out.type = out.labels[0] if out.labels else None
    details = err.get("details")
    if isinstance(details, list):
        for detail in details:
            if not isinstance(detail, dict):
                continue
            if isinstance(detail.get("reason"), str):
                out.reason = detail["reason"]
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                with contextlib.suppress(ValueError):
                    out.retry_delay = float(delay[:-1])
    return out


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait: `retry-after-ms` (OpenAI), else `Retry-After` as seconds or an HTTP date."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# Error type strings of all three protocols (and Google's status names), lower-cased.
_TYPE_KINDS: dict[str, ErrorKind] = {
    "authentication_error": "auth",
    "invalid_api_key": "auth",
    "unauthenticated": "auth",
    "permission_error": "forbidden",
    "permission_denied": "forbidden",
    "not_found_error": "model_not_found",
    "model_not_found": "model_not_found",
    "not_found": "model_not_found",
    "rate_limit_error": "rate_limited",
    "rate_limit_exceeded": "rate_limited",
    "resource_exhausted": "rate_limited",
    "insufficient_quota": "rate_limited",
    "invalid_request_error": "bad_request",
    "invalid_argument": "bad_request",
    "failed_precondition": "bad_request",
    "request_too_large": "bad_request",
    "api_error": "server",
    "overloaded_error": "server",
    "server_error": "server",
    "internal": "server",
    "unavailable": "server",
    "timeout_error": "timeout",
    "deadline_exceeded": "timeout",
}


def kind_for_status(status: int, upstream: UpstreamError | None, *, model_route: bool) -> ErrorKind:
    if status == 401:
        return "auth"
    if status == 403:
        return "forbidden"
    if status == 404:
        # A JSON error on a model route is the provider saying "no such model"; a bare 404 page means the
        # base URL points somewhere that is not this API at all.
        return "model_not_found" if model_route and upstream is not None else "bad_request"
    if status == 408:
        return "timeout"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server"
    if upstream is not None and upstream.reason == "API_KEY_INVALID":
        return "auth"  # Google answers a bad key with 400 INVALID_ARGUMENT
    return "bad_request"


def error_from_response(response: httpx.Response, target: ProviderTarget, *, model_route: bool = True) -> ProviderError:
    """A non-2xx answer (its body already read) as a ProviderError."""
    status = response.status_code
    upstream = parse_error_body(response.content)
    if upstream is not None and upstream.message:
        message = upstream.message
    else:
        text = response.content[:MAX_MESSAGE].decode("utf-8", "replace").strip()
        message = f"HTTP {status} {response.reason_phrase}" + (f": {text}" if text else "")
    retry_after = parse_retry_after(response.headers)
    if retry_after is None and upstream is not None:
        retry_after = upstream.retry_delay
    kind = kind_for_status(status, upstream, model_route=model_route)
    return ProviderError(
        kind,
        message,
        status=status,
        retry_after=retry_after if kind == "rate_limited" else None,
        code=upstream.type if upstream is not None else None,
        secrets=secrets_of(target),
    )


def error_from_payload(upstream: UpstreamError, target: ProviderTarget, *, partial_text: str = "") -> ProviderError:
    """An error reported inside a 200 response (a stream's error event, or an error body with status 200)."""
    if upstream.status is not None and upstream.status >= 400:
        kind = kind_for_status(upstream.status, upstream, model_route=True)
    else:
        # Failing after the provider accepted the request is its own fault unless it says otherwise.
        labels = upstream.labels or ([upstream.type] if upstream.type else [])
        kind = next((_TYPE_KINDS[k] for k in (label.lower() for label in labels) if k in _TYPE_KINDS), "server")
    return ProviderError(
        kind,
        upstream.message or upstream.type or "provider reported an error",
        status=upstream.status,
        retry_after=upstream.retry_delay if kind == "rate_limited" else None,
        code=upstream.type,
        partial_text=partial_text,
        secrets=secrets_of(target),
    )


def transport_error(
    exc: httpx.TransportError, target: ProviderTarget, *, started: bool = False, partial_text: str = ""
) -> ProviderError:
    kind: ErrorKind
    if isinstance(exc, httpx.TimeoutException):
        kind = "timeout"
        message = f"{type(exc).__name__}: no answer within the channel's timeout"
    elif started:
        # The provider accepted the request and then the stream broke: the reply is incomplete.
        kind = "bad_response"
        message = f"stream interrupted: {exc or type(exc).__name__}"
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        kind = "bad_request"
        message = str(exc) or type(exc).__name__
    else:
        kind = "connection"
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ProviderError(kind, message, partial_text=partial_text, secrets=secrets_of(target))


def bad_response(target: ProviderTarget, message: str, *, partial_text: str = "") -> ProviderError:
    return ProviderError("bad_response", message, partial_text=partial_text, secrets=secrets_of(target))


# --- HTTP plumbing -------------------------------------------------------------------------------


def timeout_for(target: ProviderTarget) -> httpx.Timeout:
    connect = target.connect_timeout_ms / 1000
    read = target.read_timeout_ms / 1000
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


@functools.lru_cache(maxsize=256)
def normalize_url(url: str, default_path: str) -> str:
    """`https://host` -> `https://host<default_path>`; an explicit path is kept; no trailing slash.
    Cached: every call normalises its target's URL, and a channel's URL rarely changes."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"base URL must start with http:// or https://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"base URL has no host: {url!r}")
    if parts.query or parts.fragment:
        # Endpoint paths are appended to the base; a query string would end up in the middle of them.
        raise ValueError(f"base URL must not carry a query or fragment: {url!r}")
    path = parts.path.rstrip("/") or default_path
    return f"{scheme}://{parts.netloc}{path}"


def with_custom_headers(headers: dict[str, str], target: ProviderTarget) -> dict[str, str]:
    # Custom headers win: a gateway may need its own auth or version header in place of ours.
    if target.custom_headers:
        headers.update(target.custom_headers)
    return headers


_encoder = msgspec.json.Encoder()


def encode_json(body: Any) -> bytes:
    return _encoder.encode(body)


async def request_bytes(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    target: ProviderTarget,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
    params: dict[str, str] | None = None,
    model_route: bool = True,
) -> bytes:
    """One non-streamed call; the 2xx body, or a ProviderError."""
    try:
        response = await http.request(
            method, url, content=body, headers=headers, params=params, timeout=timeout_for(target)
        )
    except httpx.TransportError as exc:
        raise transport_error(exc, target) from exc
    if not 200 <= response.status_code < 300:
        raise error_from_response(response, target, model_route=model_route)
    return response.content


def decode_or_raise(decoder: msgspec.json.Decoder[T], body: bytes, target: ProviderTarget) -> T:
    """Decode a 2xx body; a body that is an error document (some gateways answer 200 with one) is raised
    as that error, anything else unreadable as bad_response."""
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        upstream = parse_error_body(body)
        if upstream is not None and upstream.message:
            raise error_from_payload(upstream, target) from exc
        raise bad_response(target, f"malformed response: {exc}; body starts {body[:200]!r}") from exc


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
        async with http.stream("POST", url, content=body, headers=headers, timeout=timeout_for(target)) as response:
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


# --- stream assembly -----------------------------------------------------------------------------


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


# --- the adapter interface -----------------------------------------------------------------------

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
