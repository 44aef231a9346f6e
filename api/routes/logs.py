"""Logs (API.md §9): GET /api/logs, a page of the stored log lines (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import Parameter

from api.envelope import ApiError, ok
from api.pagination import Order, PageNumber, PageSize, Search, page
from api.security import require_admin
from api.state import edge_of
from schemas.logs import LOG_LEVELS
from services.logs import queries

_LEVEL_ALIASES = {"warn": "warning", "fatal": "critical"}
MAX_FILTER_VALUES = 20


def _invalid(field: str, reason: str) -> ApiError:
    return ApiError(
        "VALIDATION_ERROR",
        f"invalid request: {field}: {reason}",
        details=[{"field": field, "reason": reason, "source": "query"}],
    )


def parse_levels(raw: str | None) -> list[str] | None:
    """`error` or `warning,error` (case-insensitive; `warn` and `fatal` accepted) -> level names."""
    if raw is None or not raw.strip():
        return None
    levels: list[str] = []
    for part in raw.split(","):
        name = part.strip().lower()
        name = _LEVEL_ALIASES.get(name, name)
        if name not in LOG_LEVELS:
            raise _invalid("level", f"unknown level {part.strip()!r}; one or more of {', '.join(LOG_LEVELS)}")
        levels.append(name)
    return levels


def parse_services(raw: str | None) -> list[str] | None:
    if raw is None or not raw.strip():
        return None
    services = [s.strip() for s in raw.split(",") if s.strip()]
    if len(services) > MAX_FILTER_VALUES or any(len(s) > 100 for s in services):
        raise _invalid("service", f"at most {MAX_FILTER_VALUES} names of at most 100 characters")
    return services


def parse_time(field: str, raw: str | None) -> datetime | None:
    """An ISO 8601 time; without an offset it is UTC. A `+` the client did not URL-encode arrives as a
    space, so `...T10:00:00 02:00` is read as `...T10:00:00+02:00`."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    candidates = [text]
    head, sep, tail = text.rpartition(" ")
    if sep and head:
        candidates.append(f"{head}+{tail}")
    for candidate in candidates:
        try:
            value = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    raise _invalid(field, f"not an ISO 8601 time: {raw!r} (e.g. 2025-01-31T12:00:00Z)")


@get("/api/logs", guards=[require_admin], tags=["logs"])
async def list_logs(
    request: Request[Any, Any, Any],
    page_number: PageNumber = 1,
    page_size: PageSize = 20,
    order: Order = "desc",
    level: Annotated[
        str | None, Parameter(max_length=200, description="level, or comma-separated levels (debug..critical)")
    ] = None,
    service: Annotated[
        str | None, Parameter(max_length=2000, description="service, or comma-separated services (edge, worker...)")
    ] = None,
    search: Search = None,
    since: Annotated[str | None, Parameter(description="ISO 8601 time, inclusive (UTC when no offset)")] = None,
    until: Annotated[str | None, Parameter(description="ISO 8601 time, exclusive (UTC when no offset)")] = None,
    request_id: Annotated[str | None, Parameter(max_length=128, description="lines of one request")] = None,
) -> Response[bytes]:
    """Stored log lines of every service, newest first by default: `{items, total, page, page_size}`."""
    levels = parse_levels(level)
    services = parse_services(service)
    start = parse_time("since", since)
    end = parse_time("until", until)
    if start is not None and end is not None and start > end:
        raise _invalid("since", "since is later than until")
    items, total = await queries.list_logs(
        edge_of(request).pool,
        level=levels,
        service=services,
        search=search,
        since=start,
        until=end,
        request_id=request_id,
        page=page_number,
        page_size=page_size,
        order=order,
    )
    return ok(page(items, total, page_number, page_size))
