"""The chat turn's two writes against a real database: the reply appends right after the turn's own
message without reading the head back, and a stale version hint still lands in order."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from bus import db
from bus.eventstore import load_stream
from schemas.chat import SendChat
from schemas.envelope import Actor, CommandEnvelope
from services.chat import handlers
from services.chat.domain import conversation_stream
from services.registry import make_store


def envelope() -> CommandEnvelope:
    return CommandEnvelope(command_id=uuid.uuid4(), type="chat.send", actor=Actor("admin"), payload={})


async def test_reply_after_a_stale_version_hint_is_appended_after_what_came_in_between(pool: asyncpg.Pool) -> None:
    store = make_store(pool)
    conversation = f"web:{uuid.uuid4().hex}"
    first = await store.execute(
        envelope(), handlers.user_message(SendChat(message="one", conversation_id=conversation))
    )
    assert first.ok and first.version == 2  # started + the message
    # Another turn's message lands before this turn's reply.
    other = await store.execute(
        envelope(), handlers.user_message(SendChat(message="two", conversation_id=conversation))
    )
    assert other.ok and other.version == 3

    reply = handlers.assistant_message(conversation, "answer", [], {}, {}, after_version=first.version)
    stored = await store.execute(envelope(), reply)
    assert stored.ok and stored.version == 4
    async with pool.acquire() as conn:
        events = await load_stream(conn, conversation_stream(conversation))
        rows = await conn.fetch(
            "SELECT seq, content FROM messages WHERE conversation_id = $1 ORDER BY seq", conversation
        )
    assert [e.stream_version for e in events] == [1, 2, 3, 4]
    assert [(r["seq"], r["content"]) for r in rows] == [(1, "one"), (2, "two"), (3, "answer")]


async def test_reply_with_a_fresh_hint_is_stored(pool: asyncpg.Pool) -> None:
    store = make_store(pool)
    conversation = f"web:{uuid.uuid4().hex}"
    first = await store.execute(envelope(), handlers.user_message(SendChat(message="hi", conversation_id=conversation)))
    reply = handlers.assistant_message(conversation, "hello", [], {}, {"x": 1}, after_version=first.version)
    stored = await store.execute(envelope(), reply)
    assert stored.ok and stored.version == 3 and (stored.result or {})["x"] == 1


async def test_a_reply_counts_each_channel_it_tried(pool: asyncpg.Pool) -> None:
    store = make_store(pool)
    conversation = f"web:{uuid.uuid4().hex}"
    first = await store.execute(envelope(), handlers.user_message(SendChat(message="hi", conversation_id=conversation)))
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    metadata = {
        "channelId": b,
        "model": "m-1",
        "usage": {"promptTokens": 5, "completionTokens": 2, "totalTokens": 7},
        "latencyMs": 12.5,
        "ttftMs": 3.0,
        "channelsTried": [{"id": a, "error": "HTTP 500", "kind": "server"}, {"id": b}],
        "status": "ok",
    }
    reply = handlers.assistant_message(conversation, "hello", [], metadata, {}, after_version=first.version)
    assert (await store.execute(envelope(), reply)).ok
    rows = await pool.fetch(
        "SELECT channel_id, calls, success, failed, prompt_tokens, completion_tokens, latency_ms_sum, ttft_ms_sum,"
        " ttft_count FROM channel_stats WHERE channel_id = ANY($1) AND model = 'm-1' ORDER BY channel_id",
        [a, b],
    )
    assert [tuple(r) for r in rows] == [(a, 1, 0, 1, 0, 0, 0.0, 0.0, 0), (b, 1, 1, 0, 5, 2, 12.5, 3.0, 1)]
    # The user's own messages count nothing.
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", conversation) == 2


async def test_a_conversation_drawn_for_the_turn_is_written_without_reading_its_head(database: str) -> None:
    single = await db.create_pool(database, min_size=1, max_size=1)
    statements: list[str] = []
    try:
        async with single.acquire() as conn:  # the one connection, which the store then uses
            conn.add_query_logger(lambda record: statements.append(record.query))
        store = make_store(single)
        await store.execute(envelope(), handlers.user_message(SendChat(message="warm", conversation_id="web:warm")))
        statements.clear()
        conversation = f"web:{uuid.uuid4().hex}"
        cmd = SendChat(message="hi", conversation_id=conversation, new_conversation=True)
        stored = await store.execute(envelope(), handlers.user_message(cmd))
        seen = list(statements)
        async with single.acquire() as conn:
            events = await load_stream(conn, conversation_stream(conversation))
    finally:
        await single.close()
    assert stored.ok and stored.version == 2
    assert [e.event_type for e in events] == ["ConversationStarted", "MessageAdded"]
    assert not [q for q in seen if "FROM events" in q]


async def test_a_wrong_new_conversation_claim_appends_after_what_is_stored(pool: asyncpg.Pool) -> None:
    # Only the edge claims a conversation is new; any other sender's wrong claim must still land in order.
    store = make_store(pool)
    conversation = f"web:{uuid.uuid4().hex}"
    assert (
        await store.execute(envelope(), handlers.user_message(SendChat(message="one", conversation_id=conversation)))
    ).ok

    claimed = SendChat(message="two", conversation_id=conversation, new_conversation=True)
    stored = await store.execute(envelope(), handlers.user_message(claimed))

    assert stored.ok and stored.version == 3
    async with pool.acquire() as conn:
        events = await load_stream(conn, conversation_stream(conversation))
    assert [e.event_type for e in events] == ["ConversationStarted", "MessageAdded", "MessageAdded"]
    assert [e.data.get("content") for e in events[1:]] == ["one", "two"]


async def test_the_stored_steps_of_a_turn_come_back_in_one_query(pool: asyncpg.Pool) -> None:
    store = make_store(pool)
    turn = CommandEnvelope(command_id=uuid.uuid4(), type="chat.send", actor=Actor("admin"), request_hash="h1")
    user, final = turn.derive("user"), turn.derive("assistant")
    conversation = f"web:{uuid.uuid4().hex}"
    first = await store.execute(user, handlers.user_message(SendChat(message="hi", conversation_id=conversation)))

    assert await store.stored_replies([final, user]) == {user.command_id: first}
    # The same ids under another request hash (the key reused for another body): a conflict, not the reply.
    other = msgspec.structs.replace(turn, request_hash="h2")
    replies = await store.stored_replies([other.derive("assistant"), other.derive("user")])
    assert list(replies) == [user.command_id]
    conflict = replies[user.command_id]
    assert not conflict.ok and conflict.error is not None and conflict.error.status == 409
