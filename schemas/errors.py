"""Stable error codes of the HTTP contract (API.md §1) and the typed domain error."""

from __future__ import annotations

from typing import Any

# code -> HTTP status. The edge maps a reply's code to its status through this table.
ERROR_STATUS: dict[str, int] = {
    "VALIDATION_ERROR": 400,
    "INVALID_ARGS": 400,
    "PARSE_ERROR": 400,
    "INVALID_CONFIG": 400,
    "AUTH_REQUIRED": 401,
    "INVALID_TOKEN": 401,
    "TOKEN_EXPIRED": 401,
    "INVALID_CREDENTIALS": 401,
    "FORBIDDEN": 403,
    "SYSTEM_PRESET": 403,
    "NOT_FOUND": 404,
    "PRESET_NOT_FOUND": 404,
    "CONVERSATION_NOT_FOUND": 404,
    "CHANNEL_NOT_FOUND": 404,
    "TOOL_NOT_FOUND": 404,
    "SERVER_NOT_FOUND": 404,
    "PLUGIN_NOT_FOUND": 404,
    "PLATFORM_NOT_FOUND": 404,
    "SECTION_NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "VERSION_CONFLICT": 409,
    "PRESET_EXISTS": 409,
    "ALREADY_CONNECTED": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
    "TOOL_DISABLED": 403,
    "EXECUTION_ERROR": 500,
    "INTERNAL_ERROR": 500,
    "CHANNEL_UNAVAILABLE": 502,
    "MODEL_ERROR": 502,
    "CONNECTION_FAILED": 502,
    "UNAVAILABLE": 503,
    "TIMEOUT": 504,
}


class DomainError(Exception):
    """A rule of the domain refused a command. Travels back to the edge as a typed reply."""

    def __init__(self, code: str, message: str, *, status: int | None = None, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)
        self.details = details
