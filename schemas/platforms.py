"""Platforms (API.md §9): chat platform connections (OneBot v11 bots) and the frames the pipeline moves."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

PlatformId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+\Z")]
PLATFORM_TYPES = ("onebot11",)


# ---- commands (cmd.platforms.*) ----


class CreatePlatform(msgspec.Struct, kw_only=True):
    id: str
    body: dict[str, Any]


class UpdatePlatform(msgspec.Struct, kw_only=True):
    id: str
    body: dict[str, Any]
    expected_version: int | None = None


class DeletePlatform(msgspec.Struct, kw_only=True):
    id: str


class AuthenticateBot(msgspec.Struct, kw_only=True):
    """Asked by the edge before it accepts a OneBot connection: which platform is this bot?"""

    self_id: str
    token: str


# ---- events ----


class PlatformCreated(msgspec.Struct, kw_only=True):
    id: str
    fields: dict[str, Any]  # type, name, display_name, enabled, config{accessToken (sealed), selfId}


class PlatformUpdated(msgspec.Struct, kw_only=True):
    id: str
    changes: dict[str, Any]


class PlatformDeleted(msgspec.Struct, kw_only=True):
    id: str


PlatformsEvent = PlatformCreated | PlatformUpdated | PlatformDeleted


# ---- the pipeline's frames (INBOUND stream, platform.<id>.send) ----


class Sender(msgspec.Struct, kw_only=True, omit_defaults=True):
    nickname: str = ""
    card: str = ""
    role: str = ""  # owner | admin | member ("" in private chats)


class InboundMessage(msgspec.Struct, kw_only=True):
    """One user message from a platform, normalised by the edge; every id is a string."""

    platform: str  # the protocol, e.g. "onebot"
    platform_id: str
    self_id: str
    message_type: Literal["private", "group"]
    message_id: str
    user_id: str
    group_id: str | None = None
    text: str  # the plain text, @-segments and the reply reference removed
    at_me: bool = False
    reply_to: str | None = None
    sender: Sender = msgspec.field(default_factory=Sender)
    time: float = 0.0

    @property
    def dedup_id(self) -> str:
        return f"{self.platform}:{self.self_id}:{self.message_id}"


class SendRequest(msgspec.Struct, kw_only=True):
    """What a worker asks of the edge holding a bot, on platform.<platformId>.send."""

    action: str
    params: dict[str, Any]
    timeout: float = 10.0


class SendReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    data: Any = None
    code: str = ""
    message: str = ""
