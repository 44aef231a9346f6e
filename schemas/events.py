"""Registry of every event type: which domain publishes it and the Struct of its data.

Outside subscribers read `events.<domain>.<EventType>`; `chatbus schemas` exports these types."""

from __future__ import annotations

import msgspec

from schemas import auth, channels, chat, config, group_admin, presets

EVENT_TYPES: dict[str, tuple[str, type[msgspec.Struct]]] = {}


def _register(domain: str, *types: type[msgspec.Struct]) -> None:
    for t in types:
        EVENT_TYPES[t.__name__] = (domain, t)


_register(
    "presets",
    presets.PresetCreated,
    presets.PresetUpdated,
    presets.PresetDeleted,
    presets.PresetDefaultChanged,
    presets.DefaultPresetChanged,
)
_register(
    "auth",
    auth.UserCreated,
    auth.PasswordChanged,
    auth.LoginSucceeded,
    auth.LoginFailed,
    auth.TokenRevoked,
    auth.LoginLinkConsumed,
    auth.LoginLinkCreated,
)

_register("config", config.ConfigChanged, config.ConfigRolledBack)
_register("chat", chat.ConversationStarted, chat.MessageAdded, chat.ConversationCleared, chat.ConversationDeleted)
_register(
    "channels",
    channels.ChannelCreated,
    channels.ChannelUpdated,
    channels.ChannelDeleted,
    channels.ChannelStatusChanged,
)
_register(
    "groupadmin",
    group_admin.GroupConfigSet,
    group_admin.GroupConfigDeleted,
    group_admin.GroupLoginCodeIssued,
    group_admin.GroupLoginCodeRedeemed,
)


def domain_of(event_type: str) -> str:
    entry = EVENT_TYPES.get(event_type)
    return entry[0] if entry else "misc"
