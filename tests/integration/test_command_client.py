"""The edge's command client against a real NATS: a slow worker is waited for, a vanished one is not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from bus import nats_conn
from bus.commands import LIVENESS_AFTER, BusUnavailable, CommandClient
from schemas.envelope import Actor, CommandEnvelope, CommandReply, command_encoder


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    conn = await nats_conn.connect(nats_url, name="test-command-client")
    yield conn
    await conn.close()


def envelope() -> CommandEnvelope:
    return CommandEnvelope(command_id=uuid.uuid4(), type="probe.do", actor=Actor("admin"))


async def test_a_worker_slower_than_the_liveness_check_still_answers(nc: NATS) -> None:
    domain = f"slow{uuid.uuid4().hex[:6]}"

    async def worker(msg: Msg) -> None:
        if msg.subject.endswith("._ping"):
            await msg.respond(b"")
            return
        await asyncio.sleep(LIVENESS_AFTER * 2.5)  # past two liveness checks
        await msg.respond(command_encoder.encode(CommandReply(ok=True, result="late")))

    tasks: set[asyncio.Task[None]] = set()

    async def on_msg(msg: Msg) -> None:  # each command on a task of its own, as the worker runtime does
        task = asyncio.create_task(worker(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    await nc.subscribe(f"cmd.{domain}.*", cb=on_msg)
    reply = await CommandClient(nc).send(domain, "do", envelope(), timeout=10)
    assert reply.ok and reply.result == "late"


async def test_a_worker_that_goes_away_without_answering_fails_fast(nc: NATS) -> None:
    domain = f"gone{uuid.uuid4().hex[:6]}"
    taken = asyncio.Event()

    async def on_msg(msg: Msg) -> None:
        taken.set()

    sub = await nc.subscribe(f"cmd.{domain}.*", cb=on_msg)
    client = CommandClient(nc)
    sending = asyncio.ensure_future(client.send(domain, "do", envelope(), timeout=30))
    await taken.wait()
    await sub.unsubscribe()  # the worker is gone, the command unanswered

    with pytest.raises(BusUnavailable):
        await asyncio.wait_for(sending, 10)  # long before the command's own 30 s timeout
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]
