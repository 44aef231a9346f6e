"""`search_history`: the caller's own conversation only, from the chat read table (which is the
projection of the conversation's event stream)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.rules import escape_like
from services.tools.registry import CallContext, ToolError

SNIPPET = 500


async def search_history(pool: asyncpg.Pool, context: CallContext, query: str, limit: int) -> dict[str, Any]:
    # Never a conversation named in the arguments: a model (or a prompt injection) must not be able to
    # read someone else's history.
    if not context.conversation_id:
        raise ToolError("search_history needs a conversation: call it from a chat turn")
    rows = await pool.fetch(
        """SELECT m.role, m.content, m.created_at FROM messages m JOIN conversations c ON c.id = m.conversation_id
           WHERE m.conversation_id = $1 AND m.content ILIKE $2 AND m.role IN ('user', 'assistant')
           ORDER BY m.seq DESC LIMIT $3""",
        context.conversation_id,
        f"%{escape_like(query[:200])}%",
        limit,
    )
    return {
        "query": query[:200],
        "count": len(rows),
        "messages": [
            {"role": r["role"], "content": r["content"][:SNIPPET], "timestamp": r["created_at"].isoformat()}
            for r in rows
        ],
    }
