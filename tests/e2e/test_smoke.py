from tests.stack import Stack


async def test_health_and_login(stack: Stack) -> None:
    c = stack.client()
    r = await c.get("/health")
    assert r.status_code == 200
    assert r.json()["data"]["status"] == "ok"
    admin = await stack.admin()
    r = await admin.get("/api/presets")
    assert r.status_code == 200, r.text
    assert {p["id"] for p in r.json()["data"]["items"]} == {"default", "catgirl"}
