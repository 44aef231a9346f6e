"""Liveness of every process for /api/system/status: a heartbeat every few seconds into the NATS KV
bucket `instances`, whose entries expire, so a killed process disappears by itself. A reader also
drops an entry whose last heartbeat is older than the TTL by its own `clock` (the same rule, judged
where it is read; hosts' clocks agree to well under the TTL), which is what lets a test reach the TTL
by moving the clock instead of waiting for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
from nats.aio.client import Client as NATS
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from bus import subjects

log = logging.getLogger("chatbus.heartbeat")

BUCKET = "instances"
TTL_SECONDS = 15.0
INTERVAL_SECONDS = 5.0

# The wall clock heartbeats are stamped with and liveness is judged by; tests replace it.
clock: Callable[[], float] = time.time


class ChildStatus(msgspec.Struct, rename="camel"):
    """One role under `chatbus up`: `running`, or `restarting` while it crash-loops (backing off)."""

    state: str
    pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    last_exit_at: str | None = None
    next_restart_in: float | None = None


class Instance(msgspec.Struct, rename="camel"):
    role: str
    instance_id: str
    host: str
    pid: int
    started_at: str
    last_heartbeat: str
    domain: str | None = None
    # Only on a `supervisor` (`chatbus up`): the state of each child role it keeps running.
    children: dict[str, ChildStatus] | None = None


async def instances_bucket(nc: NATS) -> KeyValue:
    js = nc.jetstream()
    try:
        return await js.key_value(BUCKET)
    except (BucketNotFoundError, NotFoundError):
        from nats.js.api import KeyValueConfig, StorageType

        return await js.create_key_value(KeyValueConfig(bucket=BUCKET, ttl=TTL_SECONDS, storage=StorageType.MEMORY))


def is_live(instance: Instance, now: float) -> bool:
    """Whether `instance` beat within the TTL before `now` (epoch seconds)."""
    return now - datetime.fromisoformat(instance.last_heartbeat).timestamp() < TTL_SECONDS


async def live_instances(nc: NATS) -> list[Instance]:
    now = clock()
    kv = await instances_bucket(nc)
    try:
        keys = await kv.keys()
    except NotFoundError:  # nats-py raises NoKeysError (a NotFoundError) on an empty bucket
        return []
    found = []
    for key in keys:
        with contextlib.suppress(NotFoundError):
            entry = await kv.get(key)
            if entry.value:
                instance = msgspec.json.decode(entry.value, type=Instance)
                if is_live(instance, now):
                    found.append(instance)
    return sorted(found, key=lambda i: (i.role, i.instance_id))


def instance_id(role: str) -> str:
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{os.urandom(2).hex()}"


@dataclass
class Heartbeat:
    nc: NATS
    role: str
    domain: str | None = None
    instance_id: str = ""
    children: Callable[[], dict[str, ChildStatus]] | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.instance_id = self.instance_id or instance_id(self.role)

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._run())

    async def beat(self) -> None:
        record = Instance(
            role=self.role,
            instance_id=self.instance_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self.started_at,
            last_heartbeat=datetime.fromtimestamp(clock(), UTC).isoformat(),
            domain=self.domain,
            children=self.children() if self.children is not None else None,
        )
        body = msgspec.json.encode(record)
        kv = await instances_bucket(self.nc)
        await kv.put(self.instance_id, body)
        await self.nc.publish(subjects.heartbeat(self.role), body)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL_SECONDS)
            try:
                await self.beat()
            except Exception as exc:  # the bus may be away; the next beat tries again
                log.debug("heartbeat failed: %r", exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            kv = await instances_bucket(self.nc)
            await kv.delete(self.instance_id)
