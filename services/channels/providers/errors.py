"""The provider error model: `ProviderError` with its classification, and how HTTP answers, error payloads
and transport failures of all three protocols map onto it (with every secret of the target redacted)."""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import msgspec

from schemas.llm import ProviderTarget
from schemas.secrets import MASK

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
                message = message.replace(secret, MASK)
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
