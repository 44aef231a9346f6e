"""Bad input is a 4xx, never a 500 or a stall (issue 7 item 7), against a real edge."""

from __future__ import annotations

import asyncio
import json

import websockets

from tests.e2e.test_presets import envelope_error
from tests.stack import Stack

JSON = {"content-type": "application/json"}
# 342 bytes that PyYAML builds as shared references, and that expand to 9^9 strings when walked.
ALIAS_BOMB = b"""a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def deep(levels: int) -> bytes:
    return b'{"name":' + b"[" * levels + b"]" * levels + b"}"


async def test_invalid_utf8_and_deep_json_are_400_on_every_route(stack: Stack) -> None:
    admin = await stack.admin()
    anon = stack.client()
    bad_utf8 = b'{"name": "\xff\xfe", "password": "\xc3"}'
    # Before: 500 INTERNAL_ERROR (UnicodeDecodeError, RecursionError) on the typed routes; a depth of 100
    # was taken and stored.
    for client, method, path in [
        (anon, "POST", "/api/auth/login"),
        (anon, "POST", "/api/group-admin/login"),
        (admin, "POST", "/api/presets"),
        (admin, "PUT", "/api/config"),
        (admin, "POST", "/api/presets/import"),
        (admin, "POST", "/api/channels/fetch-models"),
    ]:
        for body in (bad_utf8, deep(100), deep(100_000)):
            r = await client.request(method, path, content=body, headers=JSON)
            envelope_error(r, 400, "VALIDATION_ERROR")
    # A sane depth still passes the check (and fails only on what it means).
    r = await admin.post("/api/presets", content=b'{"name":"ok","persona":{"traits":["a"]}}', headers=JSON)
    assert r.status_code == 201, r.text


async def test_deep_websocket_frame_is_an_error_frame(stack: Stack) -> None:
    token = await stack.login()
    url = stack.edges[0].url.replace("http://", "ws://") + f"/ws?token={token}"
    async with websockets.connect(url, max_size=None) as ws:
        # Before: RecursionError in the frame decoder ended the handler (the socket closed with 1011).
        await ws.send('{"action":"ping","x":' + "[" * 50_000 + "]" * 50_000 + "}")
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "error"
        await ws.send(json.dumps({"action": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}


async def test_yaml_alias_bomb_is_refused(stack: Stack) -> None:
    c = await stack.admin()
    headers = {"content-type": "application/x-yaml"}
    # Before: the edge walked 9^9 nodes (froze for seconds, then 500 or out of memory).
    err = envelope_error(
        await c.post("/api/presets/import", content=ALIAS_BOMB, headers=headers), 400, "VALIDATION_ERROR"
    )
    assert "too complex" in err["message"]
    files = {"file": ("bomb.yaml", ALIAS_BOMB, "application/x-yaml")}
    envelope_error(await c.post("/api/presets/import", files=files), 400, "VALIDATION_ERROR")
    envelope_error(await c.post("/api/presets/import", content=b"a: &a [*a]", headers=headers), 400, "VALIDATION_ERROR")
    # Anchors within the limits still work, and the edge still answers.
    ok = b"base: &p {name: Anchored, systemPrompt: hi}\npresets:\n  - *p\n"
    r = await c.post("/api/presets/import", content=ok, headers=headers)
    assert r.status_code == 200, r.text
    assert (await c.get("/health")).status_code == 200


async def test_a_body_larger_than_the_bus_carries_is_413(stack: Stack) -> None:
    c = await stack.admin()
    presets = [{"id": f"big-{i}", "name": f"Big {i}", "systemPrompt": "x" * 9000} for i in range(200)]
    body = json.dumps({"presets": presets}).encode()
    assert 1_500_000 < len(body) < 2 * 1024 * 1024  # under the import limit, over NATS' 1 MB
    # Before: 500 INTERNAL_ERROR (the NATS client's MaxPayloadError).
    envelope_error(await c.post("/api/presets/import", content=body, headers=JSON), 413, "PAYLOAD_TOO_LARGE")
    assert (await c.get("/api/presets/big-0")).status_code == 404


async def test_last_event_id_out_of_range_is_400(stack: Stack) -> None:
    c = await stack.admin()
    # Before: b"\xb2" (latin-1 "²") passed str.isdigit() and failed int(); values past int64 reached JetStream
    # as a start sequence. Both broke the stream instead of a 400.
    for value in ("-1", "abc", b"\xb2", "18446744073709551616", "9223372036854775807", "1e3", ""):
        r = await c.get("/api/events/sse", headers={"Last-Event-ID": value})
        envelope_error(r, 400, "VALIDATION_ERROR")


async def test_json_route_refuses_other_content_types(stack: Stack) -> None:
    c = await stack.admin()
    body = json.dumps({"name": "typed"}).encode()
    # Before: 201 (the body was decoded as JSON whatever its declared type).
    for media in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        r = await c.post("/api/presets", content=body, headers={"content-type": media})
        envelope_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    r = await c.put("/api/config", content=b'{"basic": {"debug": true}}', headers={"content-type": "text/plain"})
    envelope_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    # JSON with a charset, bodiless POSTs without a content type, and multipart imports still work.
    r = await c.post("/api/presets", content=body, headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text
    assert (await c.post(f"/api/presets/{r.json()['data']['id']}/set-default")).status_code == 200
    assert (await c.post("/chat/new_session")).status_code == 200
    files = {"file": ("p.json", b'{"name": "Uploaded"}', "application/json")}
    assert (await c.post("/api/presets/import", files=files)).status_code == 200


async def test_validation_details_use_the_clients_names(stack: Stack) -> None:
    c = await stack.admin()
    # Before: details said `page_number` and `type_`.
    err = envelope_error(await c.get("/api/presets", params={"page": 0}), 400, "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == ["page"] and "page_number" not in err["message"]
    err = envelope_error(await c.get("/api/presets", params={"type": "nope"}), 400, "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == ["type"]
    err = envelope_error(await c.get("/api/presets", params={"page_size": 1000}), 400, "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == ["page_size"]


async def test_integers_are_not_booleans(stack: Stack) -> None:
    c = await stack.admin()
    # Before: 201 with enabled false (Litestar converts the body with strict=False).
    err = envelope_error(
        await c.post("/api/personalities", json={"name": "Nya", "prompt": "p", "enabled": 0}), 400, "VALIDATION_ERROR"
    )
    assert err["details"][0]["field"] == "enabled"
    envelope_error(await c.post("/api/presets", json={"name": "Nya", "enabled": 1}), 400, "VALIDATION_ERROR")
    envelope_error(await c.post("/api/presets", json={"name": 5}), 400, "VALIDATION_ERROR")
    assert (await c.get("/api/presets/nya")).status_code == 404


async def test_delete_personality_default_is_not_the_put_route(stack: Stack) -> None:
    c = await stack.admin()
    # Before: 405 METHOD_NOT_ALLOWED (the static PUT /default route shadowed DELETE /{id}). Now it is the
    # delete of the preset whose id is `default`: the built-in system preset, which cannot be deleted.
    envelope_error(await c.delete("/api/personalities/default"), 403, "SYSTEM_PRESET")
    assert (await c.get("/api/presets/default")).status_code == 200
    r = await c.post("/api/personalities", json={"id": "other", "name": "Other", "prompt": "p"})
    assert r.status_code == 201, r.text
    r = await c.put("/api/personalities/default", json={"id": "other"})
    assert r.status_code == 200 and r.json()["data"]["isDefault"] is True
