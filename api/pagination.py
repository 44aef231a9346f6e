"""List parameters shared by every list route (API.md §2 "Lists")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar.params import Parameter

PageNumber = Annotated[int, Parameter(query="page", ge=1, le=1_000_000, description="page number, from 1")]
PageSize = Annotated[int, Parameter(ge=1, le=100, description="items per page, 1..100")]
Order = Literal["asc", "desc"]
Search = Annotated[str | None, Parameter(max_length=200, description="case-insensitive substring")]


def page(items: list[Any], total: int, page_number: int, page_size: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page_number, "page_size": page_size}
