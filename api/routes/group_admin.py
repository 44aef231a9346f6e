"""Group admin (API.md §9): per-group config for admins and for that group's own scoped tokens."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put

from api import commands
from api.bodycheck import json_object_body
from api.commands import expected_version
from api.envelope import ApiError, ok
from api.pagination import PageNumber, PageSize, page
from api.routes.auth import iso_time, issue_session, session_cookie
from api.security import Principal, principal_of, require_auth
from api.state import edge_of
from schemas.envelope import group_of, group_scope, may_manage_group
from schemas.group_admin import GroupId, GroupLoginBody
from services.config import queries as config_queries
from services.group_admin import queries
from services.group_admin.domain import effective_config

MAX_BODY_BYTES = 64 * 1024


def _check_group_id(group_id: str) -> str:
    try:
        return msgspec.convert(group_id, GroupId)
    except msgspec.ValidationError as exc:
        raise ApiError("VALIDATION_ERROR", "groupId must be 1..64 characters of [A-Za-z0-9_-]") from exc


def _require_group(principal: Principal, group_id: str) -> None:
    if not may_manage_group(principal.scope, group_id):
        raise ApiError("FORBIDDEN", f"this token may not manage group '{group_id}'")


async def _view(request: Request[Any, Any, Any], group_id: str) -> dict[str, Any]:
    pool = edge_of(request).pool
    stored = await queries.get_group(pool, group_id)
    overrides = stored["overrides"] if stored else {}
    config = await config_queries.current(pool)
    return {
        **effective_config(group_id, overrides, config.document),
        "overrides": overrides,
        "inherited": sorted(
            k
            for k in (
                "enabled",
                "presetId",
                "channelId",
                "model",
                "trigger",
                "blacklistUsers",
                "whitelistUsers",
                "usageLimit",
                "tools",
            )
            if k not in overrides
        ),
        "version": stored["version"] if stored else 0,
        "updatedAt": stored["updatedAt"] if stored else None,
    }


class GroupAdminController(Controller):
    path = "/api/group-admin"
    tags = ["group-admin"]
    guards = [require_auth]

    @get("/groups")
    async def list_groups(
        self, request: Request[Any, Any, Any], page_number: PageNumber = 1, page_size: PageSize = 20
    ) -> Response[bytes]:
        principal = principal_of(request)
        only = None if principal.is_admin else group_of(principal.scope)
        if only is None and not principal.is_admin:
            raise ApiError("FORBIDDEN", "this token administers no group")
        items, total = await queries.list_groups(
            edge_of(request).pool, only=only, page=page_number, page_size=page_size
        )
        return ok(page(items, total, page_number, page_size))

    @get("/{group_id:str}/config")
    async def get_config(self, request: Request[Any, Any, Any], group_id: str) -> Response[bytes]:
        group_id = _check_group_id(group_id)
        _require_group(principal_of(request), group_id)
        return ok(await _view(request, group_id))

    @put("/{group_id:str}/config")
    async def put_config(self, request: Request[Any, Any, Any], group_id: str) -> Response[bytes]:
        group_id = _check_group_id(group_id)
        _require_group(principal_of(request), group_id)
        body = await json_object_body(request, max_bytes=MAX_BODY_BYTES)
        expected = expected_version(request, body)
        await commands.send(
            request, "group_admin", "update", {"group_id": group_id, "patch": body, "expected_version": expected}
        )
        return ok(await _view(request, group_id))

    @delete("/{group_id:str}/config", status_code=200)
    async def delete_config(self, request: Request[Any, Any, Any], group_id: str) -> Response[bytes]:
        group_id = _check_group_id(group_id)
        _require_group(principal_of(request), group_id)
        await commands.send(request, "group_admin", "delete", {"group_id": group_id})
        return ok(await _view(request, group_id))


@post("/api/group-admin/login", status_code=200, tags=["group-admin"])
async def group_login(request: Request[Any, Any, Any], data: GroupLoginBody) -> Response[bytes]:
    """Trade a single-use 6-character code (from `#群管理面板` in the group) for a group-scoped token."""
    reply = await commands.send(request, "group_admin", "redeem_code", {"code": data.code.upper()}, anonymous=True)
    group_id = reply.result["groupId"]
    token, claims = issue_session(request, f"group-admin:{group_id}", group_scope(group_id))
    response = ok(
        {
            "token": token,
            "expiresAt": iso_time(claims.exp),
            "groupId": group_id,
            "scope": claims.scope,
            "user": {"username": claims.sub, "scope": claims.scope},
        }
    )
    response.cookies.append(session_cookie(token, claims.exp - claims.iat))
    return response
