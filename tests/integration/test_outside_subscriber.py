"""An outside service with nothing but nats-py sees `events.presets.*` as documented."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import jsonschema
import nats

from tests.stack import Stack


def exported_schemas() -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, "-m", "chatbus", "schemas"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


async def test_plain_nats_subscriber_gets_schema_valid_preset_events(stack: Stack) -> None:
    schemas = exported_schemas()
    received: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    nc = await nats.connect(stack.nats_url)
    got_all = asyncio.Event()

    async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
        received.append((msg.subject, json.loads(msg.data)))
        if len(received) >= 3:
            got_all.set()

    await nc.subscribe("events.presets.*", cb=on_msg)
    try:
        c = await stack.admin()
        await c.post("/api/presets", json={"id": "outside", "name": "Seen"})
        await c.put("/api/presets/outside", json={"description": "changed"})
        await c.delete("/api/presets/outside")
        await asyncio.wait_for(got_all.wait(), 10)
    finally:
        await nc.close()

    subjects = [s for s, _ in received]
    assert subjects == ["events.presets.PresetCreated", "events.presets.PresetUpdated", "events.presets.PresetDeleted"]
    for subject, body in received:
        jsonschema.validate(body, schemas["EventMessage"])
        event_type = subject.rsplit(".", 1)[-1]
        assert body["type"] == event_type and schemas[event_type]["x-subject"] == subject
        jsonschema.validate(body["data"], schemas[event_type])
    assert received[1][1]["data"] == {"changes": {"description": "changed"}}
    # The schema is strict enough to catch a wrong message.
    bad = dict(received[0][1], version="one")
    try:
        jsonschema.validate(bad, schemas["EventMessage"])
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("schema accepted a string version")


async def test_secrets_never_reach_the_bus(stack: Stack) -> None:
    nc = await nats.connect(stack.nats_url)
    js = nc.jetstream()
    try:
        sub = await js.subscribe("events.auth.*", ordered_consumer=True)
        msg = await sub.next_msg(timeout=10)
        body = json.loads(msg.data)
        assert body["type"] == "UserCreated" and "password_hash" not in body["data"]
        assert b"argon2" not in msg.data
    finally:
        await nc.close()
