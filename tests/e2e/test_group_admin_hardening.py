"""Issue 7, items 4 and 9 (group admin): the login code's stream id does not reveal the code, and a
group config naming a preset or channel that does not exist is refused."""

from __future__ import annotations

import hashlib

from tests.e2e.test_group_admin import issue_code_over_the_bus
from tests.e2e.test_presets import envelope_error
from tests.stack import Stack


async def test_code_stream_id_is_not_a_plain_hash_of_the_code(stack: Stack) -> None:
    code = await issue_code_over_the_bus(stack, "2024")
    async with stack.workers[0].pool.acquire() as conn:
        streams = [
            r["stream_id"]
            for r in await conn.fetch("SELECT stream_id FROM events WHERE event_type = 'GroupLoginCodeIssued'")
        ]
    assert len(streams) == 1 and streams[0].startswith("groupcode-")
    # Whoever reads the audit log (or the JetStream events) cannot try the 32^6 codes against it.
    assert streams[0] != "groupcode-" + hashlib.sha256(code.encode()).hexdigest()[:40]
    assert code not in streams[0]
    # And the code still works, once.
    assert (await stack.client().post("/api/group-admin/login", json={"code": code})).status_code == 200
    envelope_error(await stack.client().post("/api/group-admin/login", json={"code": code}), 401, "INVALID_CREDENTIALS")


async def test_group_config_with_an_unknown_preset_or_channel_is_400(stack: Stack) -> None:
    c = await stack.admin()
    for field, value in (("presetId", "no-such-preset"), ("channelId", "no-such-channel")):
        body = envelope_error(await c.put("/api/group-admin/12/config", json={field: value}), 400, "INVALID_CONFIG")
        assert body["details"][0]["path"] == field, body
    assert (await c.get("/api/group-admin/12/config")).json()["data"]["version"] == 0
    r = await c.put("/api/group-admin/12/config", json={"presetId": "catgirl"})
    assert r.status_code == 200 and r.json()["data"]["presetId"] == "catgirl"
