"""Group admin (API.md §9): per-group overrides of the global config, and single-use login codes."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

GroupId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+\Z")]
Name = Annotated[str, Meta(max_length=200)]
Names = Annotated[list[Name], Meta(max_length=10_000)]


class _Override(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    pass


class GroupTrigger(_Override):
    at: bool | UnsetType = UNSET
    prefixes: Names | UnsetType = UNSET
    keywords: Names | UnsetType = UNSET
    random_rate: Annotated[float, Meta(ge=0, le=1)] | UnsetType = UNSET


class UsageLimit(_Override):
    # 0 means no limit.
    per_user_per_day: Annotated[int, Meta(ge=0, le=1_000_000)] | UnsetType = UNSET
    per_group_per_day: Annotated[int, Meta(ge=0, le=10_000_000)] | UnsetType = UNSET


class GroupTools(_Override):
    allowed: Names | UnsetType = UNSET
    disabled: Names | UnsetType = UNSET
    allow_dangerous: bool | UnsetType = UNSET


class GroupOverrides(_Override):
    """What a group sets for itself; every absent field is inherited from the global config."""

    enabled: bool | UnsetType = UNSET
    preset_id: Annotated[str, Meta(max_length=50)] | UnsetType = UNSET
    channel_id: Name | UnsetType = UNSET
    model: Name | UnsetType = UNSET
    trigger: GroupTrigger | UnsetType = UNSET
    blacklist_users: Names | UnsetType = UNSET
    whitelist_users: Names | UnsetType = UNSET
    usage_limit: UsageLimit | UnsetType = UNSET
    tools: GroupTools | UnsetType = UNSET


class GroupLoginBody(msgspec.Struct):
    code: Annotated[str, Meta(min_length=6, max_length=6, pattern=r"^[A-Za-z0-9]+\Z")]


# ---- commands (cmd.group_admin.*) ----


class UpdateGroupConfig(msgspec.Struct, kw_only=True):
    group_id: GroupId
    patch: dict[str, Any]
    expected_version: int | None = None


class DeleteGroupConfig(msgspec.Struct, kw_only=True):
    group_id: GroupId


class IssueGroupCode(msgspec.Struct, kw_only=True):
    """Called by the chat side when a group admin sends `#群管理面板`."""

    group_id: GroupId
    issued_by: Annotated[str, Meta(max_length=100)] = ""


class RedeemGroupCode(msgspec.Struct, kw_only=True):
    code: str


# ---- events ----


class GroupConfigSet(msgspec.Struct, kw_only=True):
    group_id: str
    overrides: dict[str, Any]
    paths: list[str]


class GroupConfigDeleted(msgspec.Struct, kw_only=True):
    group_id: str


class GroupLoginCodeIssued(msgspec.Struct, kw_only=True):
    group_id: str
    expires_at: float
    issued_by: str = ""


class GroupLoginCodeRedeemed(msgspec.Struct, kw_only=True):
    group_id: str


GroupAdminEvent = GroupConfigSet | GroupConfigDeleted | GroupLoginCodeIssued | GroupLoginCodeRedeemed
