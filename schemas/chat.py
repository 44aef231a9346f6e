"""Conversations and chat (API.md §6): bodies, commands, events, and the frames of a streamed turn."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

ConversationId = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_:.@-]+\Z")]
Text = Annotated[str, Meta(min_length=1, max_length=100_000)]
Ident = Annotated[str, Meta(min_length=1, max_length=100)]


class ChatBody(msgspec.Struct, rename="camel", kw_only=True):
    message: Text
    conversation_id: ConversationId | None = None
    user_id: Ident | None = None
    group_id: Ident | None = None
    preset_id: Annotated[str, Meta(max_length=50)] | None = None
    model: Annotated[str, Meta(max_length=200)] | None = None
    channel_id: Annotated[str, Meta(max_length=64)] | None = None
    stream: bool = False


class NekoSendBody(msgspec.Struct, kw_only=True):
    message: Text
    session_id: ConversationId
    selected_provider: Annotated[str, Meta(max_length=64)] | None = None
    selected_model: Annotated[str, Meta(max_length=200)] | None = None


class NekoLlmChatBody(msgspec.Struct, kw_only=True):
    message: Text
    provider_id: Annotated[str, Meta(max_length=64)] | None = None
    model: Annotated[str, Meta(max_length=200)] | None = None
    session_id: ConversationId | None = None


class SessionBody(msgspec.Struct):
    session_id: ConversationId


# ---- commands (cmd.chat.*) ----


class SendChat(msgspec.Struct, kw_only=True):
    message: str
    conversation_id: str
    user_id: str | None = None
    group_id: str | None = None
    platform: str = "web"
    preset_id: str | None = None
    model: str | None = None
    channel_id: str | None = None
    stream_subject: str | None = None  # where token deltas go (chat.stream.<requestId>)
    # The edge drew this conversation's id at random for this turn: nothing is stored under it yet,
    # so the worker reads neither its head nor its history. A wrong claim costs a conflict and a
    # retry on the real head (the unique stream version still decides), never a misplaced write.
    new_conversation: bool = False
    # No step of this turn can be stored yet (the pipeline's claim saw its message's first delivery),
    # so the worker does not look them up. They are still recorded: a redelivery after a crash
    # mid-turn (this flag unset) must find the steps that committed.
    first_try: bool = False


class StartConversation(msgspec.Struct, kw_only=True):
    conversation_id: str
    creator: str = ""
    platform: str = "web"


class ConversationRef(msgspec.Struct, kw_only=True):
    conversation_id: str


# ---- events (stream `conversation-<id>`) ----


class ConversationStarted(msgspec.Struct, kw_only=True):
    conversation_id: str
    user_id: str | None = None
    group_id: str | None = None
    platform: str = "web"
    creator: str = ""


class MessageAdded(msgspec.Struct, kw_only=True):
    message_id: str
    role: Literal["user", "assistant", "system", "tool"]
    content: str
    tool_calls: list[dict[str, Any]] = []
    # assistant turns: channelId, model, usage, latencyMs, ttftMs, channelsTried, status ("ok"|"failed")
    metadata: dict[str, Any] = {}


class ConversationCleared(msgspec.Struct, kw_only=True):
    conversation_id: str


class ConversationDeleted(msgspec.Struct, kw_only=True):
    conversation_id: str


ChatEvent = ConversationStarted | MessageAdded | ConversationCleared | ConversationDeleted
