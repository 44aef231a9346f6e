"""The conversation decider on the given/when/then kit: start, clear, delete, and a turn's two writes."""

from __future__ import annotations

from schemas.chat import (
    ConversationCleared,
    ConversationDeleted,
    ConversationStarted,
    MessageAdded,
    SendChat,
    StartConversation,
)
from services.chat import domain
from services.chat.domain import ConversationState
from tests.unit.kit import Kit

chats = Kit(domain.evolve, ConversationState("c1"))
STARTED = ConversationStarted(conversation_id="c1", platform="web", creator="admin")


def turn(message: str = "hi", **kw: str) -> SendChat:
    return SendChat(message=message, conversation_id="c1", **kw)


def test_start_creates_the_conversation_once() -> None:
    after = chats.given().when(domain.decide_start, StartConversation(conversation_id="c1", creator="admin"))
    state = after.then(STARTED).state
    assert state == ConversationState("c1", exists=True, version=1)
    chats.given(STARTED).when(domain.decide_start, StartConversation(conversation_id="c1")).then_error("CONFLICT")


def test_a_deleted_conversation_can_be_started_again() -> None:
    given = chats.given(STARTED, ConversationDeleted(conversation_id="c1"))
    assert given.state == ConversationState("c1", exists=False, version=2)
    given.when(domain.decide_start, StartConversation(conversation_id="c1", creator="admin")).then(STARTED)


def test_clear_and_delete_need_an_existing_conversation() -> None:
    for decide in (domain.decide_clear, domain.decide_delete):
        chats.given().when(decide).then_error("CONVERSATION_NOT_FOUND", status=404)
        chats.given(STARTED, ConversationDeleted(conversation_id="c1")).when(decide).then_error(
            "CONVERSATION_NOT_FOUND"
        )
    chats.given(STARTED).when(domain.decide_clear).then(ConversationCleared(conversation_id="c1"))
    after = chats.given(STARTED).when(domain.decide_delete).then(ConversationDeleted(conversation_id="c1"))
    assert not after.state.exists


def test_the_first_message_starts_the_conversation_with_its_owner() -> None:
    cmd = turn("hello", user_id="u1", group_id="g1", platform="qq")
    chats.given().when(domain.decide_user_message, cmd, "bot", "m1").then(
        ConversationStarted(conversation_id="c1", user_id="u1", group_id="g1", platform="qq", creator="bot"),
        MessageAdded(message_id="m1", role="user", content="hello"),
    )


def test_later_messages_only_add_the_message() -> None:
    chats.given(STARTED).when(domain.decide_user_message, turn("again"), "admin", "m2").then(
        MessageAdded(message_id="m2", role="user", content="again")
    )


def test_the_reply_keeps_tool_calls_and_metadata_and_needs_the_conversation() -> None:
    calls = [{"id": "t1", "name": "roll_dice", "arguments": "{}"}]
    meta = {"channelId": "ch", "model": "m", "status": "ok"}
    chats.given(STARTED).when(domain.decide_assistant_message, "m3", "4", calls, meta).then(
        MessageAdded(message_id="m3", role="assistant", content="4", tool_calls=calls, metadata=meta)
    )
    deleted = chats.given(STARTED, ConversationDeleted(conversation_id="c1"))
    deleted.when(domain.decide_assistant_message, "m3", "4", [], {}).then_error(
        "CONVERSATION_NOT_FOUND", message_has="deleted during the turn"
    )


def test_state_from_the_stream_head_matches_the_fold() -> None:
    assert domain.from_head("c1", None) == chats.fold()
    assert domain.from_head("c1", (1, "ConversationStarted")) == chats.fold(STARTED)
    folded = chats.fold(STARTED, ConversationDeleted(conversation_id="c1"))
    assert domain.from_head("c1", (2, "ConversationDeleted")) == folded
