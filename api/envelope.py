"""The response envelope of API.md §1 and the exception handlers that keep every error in it."""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from schemas.errors import ERROR_STATUS

log = logging.getLogger("chatbus.edge")

JSON = "application/json"
_encoder = msgspec.json.Encoder()

_STATUS_CODES = {
    400: "VALIDATION_ERROR",
    401: "AUTH_REQUIRED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    503: "UNAVAILABLE",
    504: "TIMEOUT",
}


class ApiError(Exception):
    """Raised by the edge to answer with an error envelope."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or ERROR_STATUS.get(code, 400)
        self.details = details
        self.headers = headers or {}


def request_id_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's `X-Request-ID` if it is sane, else a new id."""
    for name, value in headers:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if 0 < len(given) <= 128 and given.isprintable():
                return given
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


# A made request id: 32 hex digits like a uuid4's, but a random prefix per process and a counter rather
# than 16 bytes from the kernel per request. Unique, not secret: a client may choose its own id anyway.
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(int.from_bytes(os.urandom(4)))


def request_id(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The id of this request, stable for its whole life (commands, logs, errors, the response header)."""
    return scope_request_id(connection.scope)


def scope_request_id(scope: Any) -> str:
    """`request_id` from the ASGI scope itself (a middleware need not build a connection for it)."""
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        rid = state["request_id"] = request_id_from_headers(scope.get("headers", ()))
    return str(rid)


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def ok(data: Any = None, *, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    body = encode({"success": True, "status": "success", "data": data})
    return Response(content=body, status_code=status, media_type=JSON, headers=headers)


def error_body(code: str, message: str, details: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": False,
        "status": "error",
        "error": message,
        "message": message,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    body.update(extra)
    return body


def error_response(
    code: str,
    message: str,
    status: int,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[bytes]:
    return Response(
        content=encode(error_body(code, message, details, **extra)),
        status_code=status,
        media_type=JSON,
        headers=headers,
    )


def handle_api_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    return error_response(exc.code, exc.message, exc.status, exc.details, exc.headers)


MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


def _client_name(request: Request[Any, Any, Any], key: str) -> str:
    """A handler parameter's name as the client sends it (`page_number` is `?page=`)."""
    try:
        field = request.route_handler.parsed_fn_signature.parameters.get(key)
    except Exception:  # no handler resolved (e.g. a 404 before routing)
        return key
    kwarg = getattr(field, "kwarg_definition", None)
    for attr in ("query", "header", "cookie"):
        if alias := getattr(kwarg, attr, None):
            return str(alias)
    return key


def _validation_details(request: Request[Any, Any, Any], exc: ValidationException) -> list[dict[str, Any]]:
    details = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        reason = str(item.get("message", ""))
        parts = [p for p in str(item.get("key") or "").split(".") if p and p != "data"]
        if parts and item.get("source", "body") != "body":
            parts[0] = _client_name(request, parts[0])
        if missing := MISSING_FIELD.search(reason):
            parts.append(missing.group(1))
        details.append({"field": ".".join(parts) or "body", "reason": reason, "source": item.get("source", "body")})
    return details


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if isinstance(exc, ValidationException) or status == 400:
        details = _validation_details(request, exc) if isinstance(exc, ValidationException) else []
        reasons = "; ".join(f"{d['field']}: {d['reason']}" for d in details)
        message = f"invalid request: {reasons}" if reasons else (exc.detail or "invalid request")
        return error_response("VALIDATION_ERROR", message, 400, details)
    if status >= 500:
        return handle_unexpected(request, exc)
    code = _STATUS_CODES.get(status, "ERROR")
    if isinstance(exc, NotAuthorizedException):
        code = "AUTH_REQUIRED"
    return error_response(code, exc.detail or code.lower(), status, headers=exc.headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    rid = request_id(request)
    log.error("unhandled error on %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc)
    return error_response(
        "INTERNAL_ERROR", f"internal error (request id {rid})", HTTP_500_INTERNAL_SERVER_ERROR, requestId=rid
    )
