"""Who holds which bot: the KV bucket `platforms`, one entry per platform id, written by the edge
that holds the socket (DESIGN.md "Platforms"). Status is derived on read: an entry whose heartbeat
is two intervals old is stale, whoever wrote it (an edge that died never cleans up)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

BUCKET = "platforms"
DEFAULT_HEARTBEAT_MS = 30_000


class Owner(msgspec.Struct, kw_only=True):
    platform_id: str
    self_id: str
    instance_id: str
    connected_at: float
    last_seen_at: float  # the last heartbeat or event
    heartbeat_ms: int = DEFAULT_HEARTBEAT_MS
    connected: bool = True
    # Why the bot's last connection attempt was refused (its token), until it connects again.
    error: str = ""

    def status(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if not self.connected:
            return "error" if self.error else "disconnected"
        stale = (now - self.last_seen_at) * 1000 > 2 * self.heartbeat_ms + 5_000
        return "disconnected" if stale else "connected"


_decode = msgspec.json.Decoder(Owner).decode
_encode = msgspec.json.Encoder().encode


async def bucket(nc: NATS) -> KeyValue:
    js = nc.jetstream()
    try:
        return await js.key_value(BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(bucket=BUCKET, history=1)


async def put(kv: KeyValue, owner: Owner) -> None:
    await kv.put(owner.platform_id, _encode(owner))


async def get(kv: KeyValue, platform_id: str) -> Owner | None:
    try:
        entry = await kv.get(platform_id)
    except KeyNotFoundError:
        return None
    return _decode(entry.value) if entry.value else None


async def release(kv: KeyValue, platform_id: str, instance_id: str) -> None:
    """Mark the bot disconnected, unless another edge took it over meanwhile."""
    current = await get(kv, platform_id)
    if current is not None and current.instance_id == instance_id and current.connected:
        with contextlib.suppress(Exception):
            await put(kv, msgspec.structs.replace(current, connected=False, last_seen_at=time.time()))


async def refused(kv: KeyValue, platform_id: str, self_id: str, instance_id: str, reason: str) -> None:
    """Status `error`: the bot this platform names was refused (a wrong token). A live connection
    is never overwritten, so a stranger's bad attempt cannot flip a working bot's status."""
    current = await get(kv, platform_id)
    if current is not None and current.status() == "connected":
        return
    now = time.time()
    await put(
        kv,
        Owner(
            platform_id=platform_id,
            self_id=self_id,
            instance_id=instance_id,
            connected_at=now,
            last_seen_at=now,
            connected=False,
            error=reason,
        ),
    )


async def all_owners(kv: KeyValue) -> dict[str, Owner]:
    out: dict[str, Owner] = {}
    try:
        keys = await kv.keys()
    except Exception:  # nats-py raises NoKeysError on an empty bucket
        return out
    for key in keys:
        owner = await get(kv, key)
        if owner is not None:
            out[key] = owner
    return out


def view(platform: dict[str, Any], owner: Owner | None, now: float | None = None) -> dict[str, Any]:
    """The API shape (API.md §9) of a platform row with its connection state."""
    status = owner.status(now) if owner else "disconnected"
    return {
        **{k: v for k, v in platform.items() if k not in ("startedAt",)},
        "status": status,
        "connected": status == "connected",
        "selfId": (owner.self_id if owner else None) or platform["selfId"],
        "instanceId": owner.instance_id if owner and status == "connected" else None,
        "connectedAt": owner.connected_at if owner and status == "connected" else None,
        "lastEventAt": platform["lastEventAt"],
    }
