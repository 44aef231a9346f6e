"""The built-in tools (API.md §8): plain Python functions, one source in the registry."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from schemas.tools import ToolSourceKind
from services.tools.builtin.calculate import calculate
from services.tools.builtin.history import search_history
from services.tools.registry import CallContext, ToolDef, ToolError

MAX_SIDES = 1000
MAX_DICE = 100

BUILTIN_TOOLS: tuple[ToolDef, ...] = (
    ToolDef(
        "get_current_time",
        "The current date and time, in a given IANA timezone (default UTC).",
        {
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "IANA name, e.g. Asia/Shanghai"}},
        },
        category="basic",
    ),
    ToolDef(
        "calculate",
        "Evaluate an arithmetic expression: numbers, + - * / // % ** and parentheses.",
        {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "e.g. (2 + 3) * 4 ** 2"}},
            "required": ["expression"],
        },
        category="basic",
    ),
    ToolDef(
        "search_history",
        "Search the messages of the current conversation for a text.",
        {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 20},
            },
            "required": ["query"],
        },
        category="memory",
    ),
    ToolDef(
        "roll_dice",
        f"Roll `count` dice (1..{MAX_DICE}, default 1) with `sides` sides (2..{MAX_SIDES}, default 6).",
        {
            "type": "object",
            "properties": {
                "sides": {"type": "integer", "minimum": 2, "maximum": MAX_SIDES},
                "count": {"type": "integer", "minimum": 1, "maximum": MAX_DICE},
            },
        },
        category="entertainment",
    ),
)


def _int_arg(arguments: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = arguments.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ToolError(f"{key} must be an integer")
    if not low <= value <= high:
        raise ToolError(f"{key} must be between {low} and {high}")
    return int(value)


def current_time(arguments: dict[str, Any]) -> dict[str, Any]:
    name = arguments.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown timezone '{str(name)[:100]}'") from None
    now = datetime.now(UTC).astimezone(zone)
    return {
        "timezone": str(name),
        "datetime": now.isoformat(),
        "weekday": now.strftime("%A"),
        "unix": int(now.timestamp()),
    }


def roll_dice(arguments: dict[str, Any]) -> dict[str, Any]:
    sides = _int_arg(arguments, "sides", 6, 2, MAX_SIDES)
    count = _int_arg(arguments, "count", 1, 1, MAX_DICE)
    rolls = [random.randint(1, sides) for _ in range(count)]
    return {"sides": sides, "count": count, "rolls": rolls, "total": sum(rolls)}


class BuiltinSource:
    kind: ToolSourceKind = "builtin"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def tools(self) -> Sequence[ToolDef]:
        return BUILTIN_TOOLS

    async def call(self, name: str, arguments: dict[str, Any], context: CallContext) -> Any:
        if name == "get_current_time":
            return current_time(arguments)
        if name == "calculate":
            expression = arguments.get("expression")
            value = calculate(expression if isinstance(expression, str) else "")
            return {"expression": expression, "result": value}
        if name == "roll_dice":
            return roll_dice(arguments)
        if name == "search_history":
            query = arguments.get("query")
            if not isinstance(query, str) or not query.strip():
                raise ToolError("query is required")
            limit = _int_arg(arguments, "limit", 5, 1, 20)
            return await search_history(self.pool, context, query, limit)
        raise ToolError(f"unknown built-in tool '{name}'")
