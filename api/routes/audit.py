"""Audit (API.md §11): the raw event log with its metadata, for administrators only."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import Parameter

from api.envelope import ApiError, ok
from api.pagination import Order, PageNumber, PageSize, page
from api.security import require_admin
from api.state import edge_of
from schemas.audit import StreamHistory
from services.audit import queries

StreamParam = Annotated[
    str | None, Parameter(max_length=200, description="a stream id, or a prefix ending in `*` (`preset-*`)")
]
TypeParam = Annotated[str | None, Parameter(query="type", max_length=200, description="an event type")]
ActorParam = Annotated[str | None, Parameter(max_length=200, description="the subject that issued the command")]
TimeParam = Annotated[str | None, Parameter(max_length=64, description="ISO 8601 time; without a zone, UTC")]

# An unencoded `+` in a query string arrives as a space: `...T10:00:00 02:00` meant `+02:00`.
_SPACED_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def parse_time(name: str, raw: str | None) -> datetime | None:
    if raw is None or not raw.strip():
        return None
    text = _SPACED_OFFSET.sub(r"\1+\2", raw.strip())
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        reason = f"not an ISO 8601 time: {raw!r}"
        raise ApiError(
            "VALIDATION_ERROR",
            f"invalid request: {name}: {reason}",
            details=[{"field": name, "reason": reason, "source": "query"}],
        ) from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def event_filter(
    stream: str | None, type_: str | None, actor: str | None, since: str | None, until: str | None
) -> queries.EventFilter:
    start, end = parse_time("since", since), parse_time("until", until)
    if start is not None and end is not None and start > end:
        reason = "since is later than until"
        raise ApiError(
            "VALIDATION_ERROR",
            f"invalid request: {reason}",
            details=[{"field": "since", "reason": reason, "source": "query"}],
        )
    return queries.EventFilter(stream=stream or None, type=type_ or None, actor=actor or None, since=start, until=end)


class AuditController(Controller):
    path = "/api/audit"
    tags = ["audit"]
    guards = [require_admin]

    @get("/events")
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        stream: StreamParam = None,
        type_: TypeParam = None,
        actor: ActorParam = None,
        since: TimeParam = None,
        until: TimeParam = None,
        page_number: PageNumber = 1,
        page_size: PageSize = 20,
        order: Order = "desc",
    ) -> Response[bytes]:
        """Events of every stream by global position (newest first by default), secrets removed."""
        items, total = await queries.list_events(
            edge_of(request).pool,
            event_filter(stream, type_, actor, since, until),
            order=order,
            page=page_number,
            page_size=page_size,
        )
        return ok(page(items, total, page_number, page_size))

    @get("/streams/{stream_id:str}")
    async def stream_history(
        self, request: Request[Any, Any, Any], stream_id: str, order: Order = "asc"
    ) -> Response[bytes]:
        """The full history of one entity, in version order."""
        events = await queries.stream_events(edge_of(request).pool, stream_id, order=order)
        if not events:
            raise ApiError("NOT_FOUND", f"stream '{stream_id}' not found")
        version = max(e.version for e in events)
        return ok(StreamHistory(stream_id=stream_id, version=version, events=events))
