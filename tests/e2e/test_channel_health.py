"""The channel health machine through a real worker: `cmd.channels.record_health` is what the chat engine
and the probe send after each call or test; the edge shows the outcome."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import nats

from bus import subjects
from schemas.envelope import Actor, CommandEnvelope, command_encoder, reply_decoder
from tests.stack import Stack


async def record(stack: Stack, channel_id: str, *, ok: bool, retry_after: float | None = None) -> None:
    nc = await nats.connect(stack.nats_url)
    try:
        envelope = CommandEnvelope(
            command_id=uuid.uuid4(),
            type="channels.record_health",
            actor=Actor("chat", "platform"),
            payload={"id": channel_id, "ok": ok, "error": None if ok else "boom", "retry_after": retry_after},
        )
        msg = await nc.request(
            subjects.command("channels", "record_health"), command_encoder.encode(envelope), timeout=5
        )
    finally:
        await nc.close()
    reply = reply_decoder.decode(msg.data)
    assert reply.ok, reply.error


async def channel(c: httpx.AsyncClient, channel_id: str) -> dict[str, Any]:
    r = await c.get(f"/api/channels/{channel_id}")
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


async def create(c: httpx.AsyncClient, channel_id: str) -> None:
    body = {"id": channel_id, "name": channel_id, "baseUrl": "http://127.0.0.1:9/v1", "apiKey": "sk-test-0000"}
    r = await c.post("/api/channels", json=body)
    assert r.status_code == 201, r.text


async def test_a_rate_limit_does_not_lift_a_channel_out_of_error(stack: Stack) -> None:
    c = await stack.admin()
    await create(c, "flaky")
    for _ in range(3):
        await record(stack, "flaky", ok=False)
    assert (await channel(c, "flaky"))["status"] == "error"
    # A 429 from a call that was in flight meanwhile (the engine sends 30 s when there is no Retry-After).
    await record(stack, "flaky", ok=False, retry_after=30)
    after = await channel(c, "flaky")
    assert (after["status"], after["cooldownUntil"]) == ("error", None), after
    # A call's success does not lift it either; a successful test does.
    await record(stack, "flaky", ok=True)
    assert (await channel(c, "flaky"))["status"] == "error"


async def test_a_failure_after_a_cooldown_reads_active(stack: Stack) -> None:
    c = await stack.admin()
    await create(c, "cooled")
    await record(stack, "cooled", ok=False, retry_after=1)
    cooling = await channel(c, "cooled")
    assert cooling["status"] == "cooldown" and cooling["cooldownUntil"] is not None
    await record(stack, "cooled", ok=False)  # selected again once the cooldown ended, and failed
    after = await channel(c, "cooled")
    assert (after["status"], after["cooldownUntil"]) == ("active", None), after
