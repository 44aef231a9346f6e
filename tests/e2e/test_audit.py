"""Audit (API.md §11): the raw event log with metadata, through a real edge, workers and Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from services.auth.tokens import issue
from tests.stack import Stack

EVENTS = "/api/audit/events"
ITEM_KEYS = {"position", "id", "stream", "version", "type", "schemaVersion", "data", "metadata", "recordedAt"}


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["success"] is False and body["status"] == "error" and body["code"] == code, body
    return body


async def events(c: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    r = await c.get(EVENTS, params=params)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def seed(c: httpx.AsyncClient) -> None:
    """preset-aud-a: created, updated; preset-aud-b: created, deleted; preset-aud_x: created."""
    for body in ({"id": "aud-a", "name": "A"}, {"id": "aud-b", "name": "B"}, {"id": "aud_x", "name": "X"}):
        assert (await c.post("/api/presets", json=body)).status_code == 201
    assert (await c.put("/api/presets/aud-a", json={"name": "A2"})).status_code == 200
    assert (await c.delete("/api/presets/aud-b")).status_code == 200


async def test_metadata_of_a_write(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post("/api/presets", json={"id": "aud-meta", "name": "Meta"}, headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 201, r.text
    request_id = r.headers["x-request-id"]
    r2 = await c.put("/api/presets/aud-meta", json={"name": "Meta 2"}, headers={"X-Request-ID": "trace-42"})
    assert r2.status_code == 200 and r2.headers["x-request-id"] == "trace-42"

    page = await events(c, stream="preset-aud-meta", order="asc")
    assert page["total"] == 2 and page["page"] == 1 and page["page_size"] == 20
    created, updated = page["items"]
    assert set(created) == ITEM_KEYS
    assert created["stream"] == "preset-aud-meta" and created["type"] == "PresetCreated"
    assert created["version"] == 1 and created["schemaVersion"] == 1 and updated["version"] == 2
    assert created["position"] < updated["position"]
    uuid.UUID(created["id"])
    datetime.fromisoformat(created["recordedAt"])
    assert created["data"]["fields"]["name"] == "Meta"

    conn = await asyncpg.connect(stack.dsn)
    try:
        command_ids = [
            str(r["command_id"])
            for r in await conn.fetch(
                "SELECT command_id FROM processed_commands WHERE stream_id = 'preset-aud-meta' ORDER BY created_at"
            )
        ]
    finally:
        await conn.close()

    meta = created["metadata"]
    assert meta["actor"] == "admin" and meta["actorScope"] == "admin"
    assert meta["requestId"] == request_id and meta["correlationId"] == request_id
    assert meta["commandId"] == command_ids[0] and meta["causationId"] == meta["commandId"]
    assert meta["commandType"] == "presets.create"
    assert meta["clientIp"] == "127.0.0.1"
    assert not [k for k in meta if "_" in k], meta  # stored snake_case, served camelCase
    assert updated["metadata"]["requestId"] == "trace-42"
    assert updated["metadata"]["commandId"] == command_ids[1] != meta["commandId"]


async def test_secrets_never_leave(stack: Stack) -> None:
    c = await stack.admin()
    page = await events(c, type="UserCreated")
    assert page["total"] >= 1
    admin_created = next(e for e in page["items"] if e["stream"] == "user-admin")
    assert "password_hash" not in admin_created["data"]
    assert admin_created["data"]["scope"] == "admin"
    r = await c.get("/api/audit/streams/user-admin")
    assert r.status_code == 200, r.text
    assert "password_hash" not in r.text and "$argon2" not in r.text
    r = await c.get(EVENTS, params={"stream": "user-*", "page_size": 100})
    assert "password_hash" not in r.text and "$argon2" not in r.text


async def test_filters(stack: Stack) -> None:
    c = await stack.admin()
    await seed(c)

    page = await events(c, stream="preset-aud-a")
    assert [(e["type"], e["version"]) for e in page["items"]] == [("PresetUpdated", 2), ("PresetCreated", 1)]

    page = await events(c, stream="preset-aud-*")
    assert page["total"] == 4
    assert {e["stream"] for e in page["items"]} == {"preset-aud-a", "preset-aud-b"}
    # `_` in a prefix is a character, not a LIKE wildcard.
    page = await events(c, stream="preset-aud_*")
    assert [e["stream"] for e in page["items"]] == ["preset-aud_x"]
    assert (await events(c, stream="preset-aud"))["total"] == 0  # exact unless it ends in `*`
    assert (await events(c, stream="*"))["total"] == (await events(c))["total"]

    page = await events(c, type="PresetDeleted")
    assert [e["stream"] for e in page["items"]] == ["preset-aud-b"]
    page = await events(c, stream="preset-*", type="PresetCreated", page_size=100)
    assert {"preset-aud-a", "preset-aud-b", "preset-aud_x", "preset-default"} <= {e["stream"] for e in page["items"]}
    assert {e["type"] for e in page["items"]} == {"PresetCreated"}

    mine = await events(c, actor="admin", stream="preset-*")
    assert mine["total"] == 5 and {e["metadata"]["actor"] for e in mine["items"]} == {"admin"}
    system = await events(c, actor="system", page_size=100)
    assert system["total"] >= 3 and {e["metadata"]["actor"] for e in system["items"]} == {"system"}
    assert "preset-default" in {e["stream"] for e in system["items"]}
    assert (await events(c, actor="nobody"))["total"] == 0

    everything = (await events(c, order="asc", page_size=100))["items"]
    positions = [e["position"] for e in everything]
    assert positions == sorted(positions) and len(positions) == len(set(positions))
    newest_first = [e["position"] for e in (await events(c, page_size=100))["items"]]
    assert newest_first == sorted(positions, reverse=True)

    # since/until are inclusive bounds on recordedAt, with or without a zone (no zone: UTC).
    times = sorted({datetime.fromisoformat(e["recordedAt"]) for e in everything})
    middle = times[len(times) // 2]
    after = await events(c, since=middle.isoformat(), page_size=100)
    before = await events(c, until=middle.isoformat(), page_size=100)
    assert after["items"] and before["items"]
    assert all(datetime.fromisoformat(e["recordedAt"]) >= middle for e in after["items"])
    assert all(datetime.fromisoformat(e["recordedAt"]) <= middle for e in before["items"])
    at_middle = sum(1 for e in everything if datetime.fromisoformat(e["recordedAt"]) == middle)
    assert after["total"] + before["total"] == len(everything) + at_middle
    naive_utc = middle.astimezone(UTC).replace(tzinfo=None)
    assert (await events(c, since=naive_utc.isoformat(), page_size=100))["total"] == after["total"]
    zulu = middle.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert (await events(c, since=zulu, page_size=100))["total"] == after["total"]
    window = await events(c, since=times[0].isoformat(), until=times[-1].isoformat(), page_size=100)
    assert window["total"] == len(everything)
    assert (await events(c, until=(times[0] - timedelta(seconds=1)).isoformat()))["total"] == 0
    assert (await events(c, since=(times[-1] + timedelta(seconds=1)).isoformat()))["total"] == 0
    # Filters combine.
    both = await events(c, stream="preset-aud-*", type="PresetCreated", actor="admin", since=times[0].isoformat())
    assert both["total"] == 2


async def test_paging(stack: Stack) -> None:
    c = await stack.admin()
    await seed(c)
    full = await events(c, stream="preset-aud*", page_size=100)
    assert full["total"] == 5
    seen: list[int] = []
    for number, size in ((1, 2), (2, 2), (3, 1)):
        page = await events(c, stream="preset-aud*", page=number, page_size=2)
        assert page["total"] == 5 and page["page"] == number and page["page_size"] == 2
        assert len(page["items"]) == size
        seen += [e["position"] for e in page["items"]]
    assert seen == [e["position"] for e in full["items"]]
    past_the_end = await events(c, stream="preset-aud*", page=9, page_size=2)
    assert past_the_end["items"] == [] and past_the_end["total"] == 5


async def test_stream_history(stack: Stack) -> None:
    c = await stack.admin()
    await seed(c)
    r = await c.get("/api/audit/streams/preset-aud-a")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["streamId"] == "preset-aud-a" and data["version"] == 2
    assert [(e["version"], e["type"]) for e in data["events"]] == [(1, "PresetCreated"), (2, "PresetUpdated")]
    assert set(data["events"][0]) == ITEM_KEYS and data["events"][0]["metadata"]["actor"] == "admin"

    # A deleted entity keeps its history.
    data = (await c.get("/api/audit/streams/preset-aud-b", params={"order": "desc"})).json()["data"]
    assert data["version"] == 2 and [e["type"] for e in data["events"]] == ["PresetDeleted", "PresetCreated"]

    error(await c.get("/api/audit/streams/preset-nope"), 404, "NOT_FOUND")
    error(await c.get("/api/audit/streams/preset-aud-a", params={"order": "up"}), 400, "VALIDATION_ERROR")


async def test_bad_parameters_are_400(stack: Stack) -> None:
    c = await stack.admin()
    for bad in (
        {"since": "yesterday"},
        {"until": "2024-13-45"},
        {"since": "2024-06-02T00:00:00Z", "until": "2024-06-01T00:00:00Z"},
        {"page": 0},
        {"page": "x"},
        {"page_size": 0},
        {"page_size": 101},
        {"order": "sideways"},
        {"stream": "s" * 201},
    ):
        body = error(await c.get(EVENTS, params=bad), 400, "VALIDATION_ERROR")
        assert body["message"], bad
    body = error(await c.get(EVENTS, params={"since": "yesterday"}), 400, "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "since"


async def test_admin_only(stack: Stack) -> None:
    anonymous = stack.client()
    error(await anonymous.get(EVENTS), 401, "AUTH_REQUIRED")
    error(await anonymous.get("/api/audit/streams/user-admin"), 401, "AUTH_REQUIRED")
    error(await stack.client(token="not-a-jwt").get(EVENTS), 401, "INVALID_TOKEN")
    group_token, _ = issue(stack.secret, "group-admin-1", "group:1")
    group = stack.client(token=group_token)
    error(await group.get(EVENTS), 403, "FORBIDDEN")
    error(await group.get("/api/audit/streams/user-admin"), 403, "FORBIDDEN")
