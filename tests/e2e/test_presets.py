"""Presets, ChatAI dialect, end to end through a real edge and real workers."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from tests.stack import Stack


def envelope_error(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["status"] == "error"
    assert body["code"] == code, body
    assert body["error"] == body["message"] and body["message"]
    return body


async def test_crud_round_trip(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post(
        "/api/presets",
        json={
            "id": "helper_1",
            "name": "Helper",
            "systemPrompt": "Be kind.",
            "modelParams": {"temperature": 0.7, "max_tokens": 512, "stop": ["\n\n"]},
            "persona": {"name": "Hel", "speakingStyle": "warm", "traits": ["kind"]},
            "context": {"maxMessages": 20},
            "tools": {"allowedTools": ["web_search"]},
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()["data"]
    assert created["id"] == "helper_1" and created["type"] == "user" and created["version"] == 1
    assert created["modelParams"] == {"temperature": 0.7, "max_tokens": 512, "stop": ["\n\n"]}
    assert created["persona"]["speakingStyle"] == "warm"
    assert r.headers["etag"] == '"1"'

    r = await c.get("/api/presets/helper_1")
    assert r.status_code == 200 and r.json()["data"] == created

    r = await c.put("/api/presets/helper_1", json={"name": "Helper 2", "systemPrompt": "Be very kind."})
    assert r.status_code == 200, r.text
    updated = r.json()["data"]
    assert updated["name"] == "Helper 2" and updated["systemPrompt"] == "Be very kind."
    assert updated["persona"] == created["persona"] and updated["version"] == 2

    r = await c.delete("/api/presets/helper_1")
    assert r.status_code == 200 and r.json()["data"] == {"id": "helper_1", "deleted": True}
    envelope_error(await c.get("/api/presets/helper_1"), 404, "PRESET_NOT_FOUND")
    envelope_error(await c.delete("/api/presets/helper_1"), 404, "PRESET_NOT_FOUND")
    envelope_error(await c.put("/api/presets/helper_1", json={"name": "x"}), 404, "PRESET_NOT_FOUND")


async def test_create_without_id_derives_one(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post("/api/presets", json={"name": "Travel Agent"})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["id"].startswith("Travel-Agent-")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "ab", "name": "x"}, "id"),
        ({"id": "bad id!", "name": "x"}, "id"),
        ({"id": "a" * 51, "name": "x"}, "id"),
        ({"id": "okid"}, "name"),
        ({"id": "okid", "name": ""}, "name"),
        ({"id": "okid", "name": "n" * 101}, "name"),
        ({"id": "okid", "name": "x", "systemPrompt": "p" * 10001}, "systemPrompt"),
        ({"id": "okid", "name": "x", "modelParams": {"temperature": 2.5}}, "modelParams.temperature"),
        ({"id": "okid", "name": "x", "modelParams": {"temperature": -0.1}}, "modelParams.temperature"),
        ({"id": "okid", "name": "x", "modelParams": {"max_tokens": 0}}, "modelParams.max_tokens"),
        ({"id": "okid", "name": "x", "modelParams": {"max_tokens": 128001}}, "modelParams.max_tokens"),
        ({"id": "okid", "name": 5}, "name"),
        ({"id": "okid", "name": "x", "enabled": "yes"}, "enabled"),
    ],
)
async def test_create_rejects_bad_fields(stack: Stack, body: dict, field: str) -> None:
    c = await stack.admin()
    err = envelope_error(await c.post("/api/presets", json=body), 400, "VALIDATION_ERROR")
    assert err["details"] and err["details"][0]["field"] == field, err
    r = await c.get("/api/presets", params={"type": "user"})
    assert r.json()["data"]["total"] == 0  # nothing half-written


async def test_bad_bodies_are_400_not_500(stack: Stack) -> None:
    c = await stack.admin()
    for content in (b"{bad", b"", b"[]", b"null", b'"text"'):
        r = await c.post("/api/presets", content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (content, r.text)
        assert r.json()["success"] is False
    envelope_error(await c.put("/api/presets/default", json={"modelParams": {"top_p": 3}}), 400, "VALIDATION_ERROR")


async def test_duplicate_id_is_preset_exists(stack: Stack) -> None:
    c = await stack.admin()
    assert (await c.post("/api/presets", json={"id": "du", "name": "A"})).status_code == 400  # id too short
    assert (await c.post("/api/presets", json={"id": "dupe", "name": "A"})).status_code == 201
    envelope_error(await c.post("/api/presets", json={"id": "dupe", "name": "B"}), 409, "PRESET_EXISTS")
    assert (await c.get("/api/presets/dupe")).json()["data"]["name"] == "A"


async def test_system_and_default_presets_cannot_be_deleted(stack: Stack) -> None:
    c = await stack.admin()
    envelope_error(await c.delete("/api/presets/default"), 403, "SYSTEM_PRESET")
    envelope_error(await c.delete("/api/presets/catgirl"), 403, "SYSTEM_PRESET")
    await c.post("/api/presets", json={"id": "mine", "name": "Mine"})
    r = await c.post("/api/presets/mine/set-default")
    assert r.status_code == 200 and r.json()["data"]["isDefault"] is True
    envelope_error(await c.delete("/api/presets/mine"), 403, "SYSTEM_PRESET")
    defaults = [p["id"] for p in (await c.get("/api/presets")).json()["data"]["items"] if p["isDefault"]]
    assert defaults == ["mine"]
    assert (await c.post("/api/presets/default/set-default")).status_code == 200
    assert (await c.delete("/api/presets/mine")).status_code == 200
    envelope_error(await c.post("/api/presets/nope-nope/set-default"), 404, "PRESET_NOT_FOUND")


async def test_concurrent_set_default_leaves_exactly_one(stack: Stack) -> None:
    c = await stack.admin()
    ids = [f"pick{i}" for i in range(6)]
    for i in ids:
        assert (await c.post("/api/presets", json={"id": i, "name": i})).status_code == 201
    results = await asyncio.gather(*(c.post(f"/api/presets/{i}/set-default") for i in ids))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    items = (await c.get("/api/presets", params={"page_size": 100})).json()["data"]["items"]
    assert sum(p["isDefault"] for p in items) == 1


async def test_if_match_and_expected_version(stack: Stack) -> None:
    c = await stack.admin()
    await c.post("/api/presets", json={"id": "vers", "name": "v1"})
    r = await c.put("/api/presets/vers", json={"name": "v2"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["data"]["version"] == 2
    err = envelope_error(
        await c.put("/api/presets/vers", json={"name": "v3"}, headers={"If-Match": "1"}),
        409,
        "VERSION_CONFLICT",
    )
    assert err["details"][0]["currentVersion"] == 2
    envelope_error(await c.put("/api/presets/vers", json={"name": "v3", "expectedVersion": 1}), 409, "VERSION_CONFLICT")
    envelope_error(
        await c.put("/api/presets/vers", json={"name": "v3"}, headers={"If-Match": "abc"}),
        400,
        "VALIDATION_ERROR",
    )
    envelope_error(await c.delete("/api/presets/vers", headers={"If-Match": "1"}), 409, "VERSION_CONFLICT")
    assert (await c.get("/api/presets/vers")).json()["data"]["name"] == "v2"
    assert (await c.delete("/api/presets/vers", headers={"If-Match": "2"})).status_code == 200


async def test_idempotency_key_applies_once(stack: Stack) -> None:
    c = await stack.admin()
    headers = {"Idempotency-Key": "create-once-1"}
    first = await c.post("/api/presets", json={"name": "Once"}, headers=headers)
    second = await c.post("/api/presets", json={"name": "Once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["data"]["id"] == second.json()["data"]["id"]
    assert (await c.get("/api/presets", params={"type": "user"})).json()["data"]["total"] == 1
    async with stack.workers[0].pool.acquire() as conn:
        n = await conn.fetchval(
            "SELECT count(*) FROM events WHERE event_type = 'PresetCreated' AND data->'fields'->>'name' = 'Once'"
        )
    assert n == 1
    envelope_error(
        await c.post("/api/presets", json={"name": "x"}, headers={"Idempotency-Key": "k" * 201}),
        400,
        "VALIDATION_ERROR",
    )


async def test_list_paging_sorting_search_and_type(stack: Stack) -> None:
    c = await stack.admin()
    for i in range(7):
        await c.post(
            "/api/presets",
            json={"id": f"user-{i}", "name": f"Zed {i}", "description": "findme" if i % 2 else ""},
        )
    r = await c.get(
        "/api/presets", params={"page": 2, "page_size": 3, "sort_by": "name", "order": "desc", "type": "user"}
    )
    data = r.json()["data"]
    assert data["total"] == 7 and data["page"] == 2 and data["page_size"] == 3
    assert [p["name"] for p in data["items"]] == ["Zed 3", "Zed 2", "Zed 1"]
    r = await c.get("/api/presets", params={"search": "FINDME"})
    assert r.json()["data"]["total"] == 3
    r = await c.get("/api/presets", params={"type": "system"})
    assert {p["id"] for p in r.json()["data"]["items"]} == {"default", "catgirl"}
    r = await c.get("/api/presets", params={"search": "100%_"})
    assert r.json()["data"]["total"] == 0
    r = await c.get("/api/presets", params={"page": 99})
    assert r.json()["data"]["items"] == [] and r.json()["data"]["total"] == 9
    for bad in (
        {"page": 0},
        {"page": "x"},
        {"page_size": 0},
        {"page_size": 101},
        {"sort_by": "password"},
        {"order": "sideways"},
        {"type": "robot"},
    ):
        envelope_error(await c.get("/api/presets", params=bad), 400, "VALIDATION_ERROR")


async def test_copy(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post("/api/presets/catgirl/copy", json={"newId": "catgirl-2", "newName": "Neko II"})
    assert r.status_code == 201, r.text
    copy = r.json()["data"]
    assert copy["type"] == "user" and copy["name"] == "Neko II" and copy["persona"]["name"] == "Neko"
    r = await c.post("/api/presets/catgirl/copy", json={"newId": "catgirl-3"})
    assert r.json()["data"]["name"] == "Neko (copy)"
    envelope_error(await c.post("/api/presets/catgirl/copy", json={"newId": "catgirl-2"}), 409, "PRESET_EXISTS")
    envelope_error(await c.post("/api/presets/missing/copy", json={"newId": "whatever"}), 404, "PRESET_NOT_FOUND")
    envelope_error(await c.post("/api/presets/catgirl/copy", json={"newId": "x"}), 400, "VALIDATION_ERROR")


async def test_export_and_import_json_and_yaml(stack: Stack) -> None:
    c = await stack.admin()
    await c.post("/api/presets", json={"id": "exported", "name": "Exp", "modelParams": {"temperature": 1.1}})
    r = await c.get("/api/presets/exported/export")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    doc = r.json()["data"]
    assert doc["id"] == "exported" and "version" not in doc
    r = await c.get("/api/presets/exported/export", params={"format": "yaml"})
    assert r.headers["content-type"].startswith("application/x-yaml")
    yaml_doc = yaml.safe_load(r.text)
    assert yaml_doc == doc

    # Import the enveloped JSON export under a new id, and the YAML one as a multipart file.
    exported_json = r.text
    doc["id"] = "imported-json"
    r = await c.post("/api/presets/import", json={"success": True, "data": doc})
    assert r.status_code == 200 and r.json()["data"] == {"imported": ["imported-json"], "skipped": []}
    yaml_doc["id"] = "imported-yaml"
    files = {"file": ("preset.yaml", yaml.safe_dump(yaml_doc).encode(), "application/x-yaml")}
    r = await c.post("/api/presets/import", files=files)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["imported"] == ["imported-yaml"]
    r = await c.get("/api/presets/imported-yaml")
    assert r.json()["data"]["modelParams"]["temperature"] == 1.1
    assert exported_json

    # Existing ids are skipped unless overwrite; system presets are never overwritten.
    r = await c.post(
        "/api/presets/import",
        json={"presets": [{"id": "imported-json", "name": "New name"}, {"id": "default", "name": "Hijack"}]},
    )
    assert r.json()["data"]["skipped"] == [
        {"id": "imported-json", "reason": "exists"},
        {"id": "default", "reason": "exists"},
    ]
    r = await c.post(
        "/api/presets/import?overwrite=true",
        json=[{"id": "imported-json", "name": "New name"}, {"id": "default", "name": "Hijack"}],
    )
    assert r.json()["data"]["imported"] == ["imported-json"]
    assert (await c.get("/api/presets/imported-json")).json()["data"]["name"] == "New name"
    assert (await c.get("/api/presets/default")).json()["data"]["name"] == "Default assistant"

    r = await c.post("/api/presets/import", content=b"name: [unclosed", headers={"Content-Type": "application/x-yaml"})
    envelope_error(r, 400, "PARSE_ERROR")
    envelope_error(await c.post("/api/presets/import", json=[1, 2]), 400, "VALIDATION_ERROR")
    # One bad preset rejects the whole import: nothing half-written.
    r = await c.post("/api/presets/import", json=[{"id": "good-one", "name": "ok"}, {"id": "bad-one", "name": ""}])
    envelope_error(r, 400, "VALIDATION_ERROR")
    envelope_error(await c.get("/api/presets/good-one"), 404, "PRESET_NOT_FOUND")
    envelope_error(await c.get("/api/presets/missing/export"), 404, "PRESET_NOT_FOUND")
