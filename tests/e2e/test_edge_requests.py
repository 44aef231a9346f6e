"""Per-request work at the edge that every route shares: NUL refusal of command payloads, the rate-limit
and request-id headers on routed answers."""

from __future__ import annotations

from tests.stack import Stack


async def test_a_nul_in_a_command_is_refused_and_its_escape_as_text_is_not(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post("/api/presets", json={"id": "nul-1", "name": "a\x00b"})
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR" and "NUL" in r.json()["message"]
    r = await c.post("/api/presets", json={"id": "nul-2", "name": "x", "description": "d\x00"})
    assert r.status_code == 400 and "NUL" in r.json()["message"]
    # The six characters \u0000 are text like any other.
    r = await c.post("/api/presets", json={"id": "nul-3", "name": "literal \\u0000"})
    assert r.status_code == 201, r.text
    assert (await c.get("/api/presets/nul-3")).json()["data"]["name"] == "literal \\u0000"


async def test_routed_answers_carry_the_rate_limit_and_request_id_headers(stack: Stack) -> None:
    c = await stack.admin()
    for r in (
        await c.post("/api/presets", json={"id": "hdr", "name": "H"}),
        await c.get("/api/presets/hdr"),
        await c.get("/api/presets/missing"),
    ):
        assert r.headers["x-ratelimit-limit"] and r.headers["x-ratelimit-reset"], r.headers
        assert len(r.headers["x-request-id"]) == 32
        assert r.headers.get_list("x-ratelimit-remaining") == [r.headers["x-ratelimit-remaining"]]
