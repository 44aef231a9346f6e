"""Conversations: pure state, evolve and decide. A conversation's state is only whether it exists
and its version, so handlers read the stream's head instead of folding every message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bus.events import EventCatalog
from schemas.chat import (
    ChatEvent,
    ConversationCleared,
    ConversationDeleted,
    ConversationStarted,
    MessageAdded,
    SendChat,
    StartConversation,
)
from schemas.errors import DomainError

EVENTS = EventCatalog.of("chat", ConversationStarted, MessageAdded, ConversationCleared, ConversationDeleted)
PREFIX = "conversation-"


def conversation_stream(conversation_id: str) -> str:
    return f"{PREFIX}{conversation_id}"


@dataclass(frozen=True)
class ConversationState:
    id: str
    exists: bool = False
    version: int = 0


def evolve(state: ConversationState, event: ChatEvent) -> ConversationState:
    return ConversationState(state.id, not isinstance(event, ConversationDeleted), state.version + 1)


def from_head(conversation_id: str, head: tuple[int, str] | None) -> ConversationState:
    """The state from the stream head alone: it exists unless never started or deleted last."""
    if head is None:
        return ConversationState(conversation_id)
    version, last_type = head
    return ConversationState(conversation_id, last_type != ConversationDeleted.__name__, version)


def _require(state: ConversationState) -> None:
    if not state.exists:
        raise DomainError("CONVERSATION_NOT_FOUND", f"conversation '{state.id}' not found")


def decide_start(state: ConversationState, cmd: StartConversation) -> list[ChatEvent]:
    if state.exists:
        raise DomainError("CONFLICT", f"conversation '{state.id}' exists")
    return [ConversationStarted(conversation_id=state.id, platform=cmd.platform, creator=cmd.creator)]


def decide_clear(state: ConversationState) -> list[ChatEvent]:
    _require(state)
    return [ConversationCleared(conversation_id=state.id)]


def decide_delete(state: ConversationState) -> list[ChatEvent]:
    _require(state)
    return [ConversationDeleted(conversation_id=state.id)]


def decide_user_message(state: ConversationState, cmd: SendChat, creator: str, message_id: str) -> list[ChatEvent]:
    """The user's side of a turn; the first message of a conversation starts it."""
    events: list[ChatEvent] = []
    if not state.exists:
        events.append(
            ConversationStarted(
                conversation_id=state.id,
                user_id=cmd.user_id,
                group_id=cmd.group_id,
                platform=cmd.platform,
                creator=creator,
            )
        )
    events.append(MessageAdded(message_id=message_id, role="user", content=cmd.message))
    return events


def decide_assistant_message(
    state: ConversationState,
    message_id: str,
    content: str,
    tool_calls: list[dict[str, Any]],
    metadata: dict[str, Any],
) -> list[ChatEvent]:
    if not state.exists:
        raise DomainError("CONVERSATION_NOT_FOUND", "the conversation was deleted during the turn")
    return [
        MessageAdded(message_id=message_id, role="assistant", content=content, tool_calls=tool_calls, metadata=metadata)
    ]
