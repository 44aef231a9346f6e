"""The envelope and error rules of API.md §1 on routes of no particular domain."""

from __future__ import annotations

from tests.stack import Stack


async def test_unknown_route_and_method_are_enveloped(stack: Stack) -> None:
    c = stack.client()
    r = await c.get("/api/does-not-exist")
    assert r.status_code == 404
    assert r.json() == {
        "success": False,
        "status": "error",
        "error": "Not Found",
        "message": "Not Found",
        "code": "NOT_FOUND",
    }
    r = await c.patch("/health")
    assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED"


async def test_request_id_is_echoed_or_made(stack: Stack) -> None:
    c = stack.client()
    r = await c.get("/health", headers={"X-Request-ID": "trace-me-123"})
    assert r.headers["x-request-id"] == "trace-me-123"
    r = await c.get("/health")
    assert len(r.headers["x-request-id"]) == 32


async def test_body_too_large_is_413(stack: Stack) -> None:
    c = await stack.admin()
    r = await c.post(
        "/api/presets",
        content=b'{"name": "' + b"x" * (5 * 1024 * 1024) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_openapi_documents_routes_and_error_codes(stack: Stack) -> None:
    c = stack.client()
    r = await c.get("/schema/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    for path in (
        "/api/presets",
        "/api/presets/{preset_id}",
        "/api/personalities",
        "/api/auth/login",
        "/api/login",
        "/api/events/sse",
        "/health",
    ):
        assert path in spec["paths"], path
    assert "PRESET_NOT_FOUND" in spec["info"]["description"] and "VERSION_CONFLICT" in spec["info"]["description"]
    assert (await c.get("/schema")).status_code == 200
