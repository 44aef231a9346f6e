"""Command handlers of the chat domain's writes: read the conversation's head, decide, append.

The turn's two writes (the user message, then the reply) are built per turn by `user_message` and
`assistant_message`; the orchestration around the LLM call lives in `engine.py`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from bus.eventstore import Decision, Handler, StreamAppend, event_from_struct, payload_of, stream_head
from bus.streamcache import Folded, current_attempt
from schemas.chat import ConversationRef, SendChat, StartConversation
from schemas.envelope import CommandEnvelope
from services.chat import domain
from services.chat.domain import ConversationState, conversation_stream


async def load_conversation(conn: asyncpg.Connection, conversation_id: str) -> ConversationState:
    return domain.from_head(conversation_id, await stream_head(conn, conversation_stream(conversation_id)))


async def turn_conversation(conn: asyncpg.Connection, cmd: SendChat) -> ConversationState:
    """The conversation a turn's message goes to. One whose id the edge just drew at random is taken
    as empty without reading its head: the append at version 0 is checked by the unique
    (stream_id, stream_version), and the store decides again on the real head if it conflicts."""
    tried = current_attempt.get()
    if not (cmd.new_conversation and tried is not None and tried.trusting):
        return await load_conversation(conn, cmd.conversation_id)
    state = ConversationState(cmd.conversation_id)
    tried.read(conversation_stream(state.id), Folded(state, 0, domain.evolve, domain.EVENTS), speculative=True)
    return state


def _append(state: ConversationState, events: Sequence[msgspec.Struct]) -> list[StreamAppend]:
    return [StreamAppend(conversation_stream(state.id), state.version, [event_from_struct(e) for e in events])]


async def start(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, StartConversation)
    state = await load_conversation(conn, cmd.conversation_id)
    events = domain.decide_start(state, cmd)
    return Decision(_append(state, events), result={"conversationId": cmd.conversation_id})


async def clear(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, ConversationRef)
    state = await load_conversation(conn, cmd.conversation_id)
    events = domain.decide_clear(state)
    return Decision(_append(state, events), result={"conversationId": cmd.conversation_id, "cleared": True})


async def delete(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, ConversationRef)
    state = await load_conversation(conn, cmd.conversation_id)
    events = domain.decide_delete(state)
    return Decision(_append(state, events), result={"conversationId": cmd.conversation_id, "deleted": True})


def user_message(cmd: SendChat) -> Handler:
    async def handler(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        state = await turn_conversation(conn, cmd)
        message_id = uuid.uuid4().hex
        creator = envelope.actor.subject if envelope.actor else ""
        events = domain.decide_user_message(state, cmd, creator, message_id)
        return Decision(_append(state, events), result={"messageId": message_id})

    return handler


def assistant_message(
    conversation_id: str,
    content: str,
    tool_calls: list[dict[str, Any]],
    metadata: dict[str, Any],
    result: dict[str, Any],
    *,
    after_version: int | None = None,
) -> Handler:
    """The reply; `result` is the caller's answer, completed with the new message's id.

    `after_version` is the conversation's version once the turn's own message was stored: the first
    try appends right after it without reading the head back. Anything appended in between (another
    turn, a delete) makes that append conflict, and the store's retry reads the head as usual."""
    hint = [after_version] if after_version else []

    async def handler(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        known = hint.pop() if hint else None
        if known is not None:
            state = ConversationState(conversation_id, exists=True, version=known)
        else:
            state = await load_conversation(conn, conversation_id)
        message_id = uuid.uuid4().hex
        events = domain.decide_assistant_message(state, message_id, content, tool_calls, metadata)
        return Decision(_append(state, events), result={**result, "messageId": message_id})

    return handler


HANDLERS: dict[str, Handler] = {"start": start, "clear": clear, "delete": delete}
