"""Which channels serve a chat turn, in which order (API.md §5): enabled channels that serve the
model, by priority tier (lower first), weighted random within a tier; channels in `error`, in an
unexpired cooldown, or disabled are skipped."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from schemas.channels import Channel


def usable(channel: Channel, model: str | None, now: float) -> bool:
    if not channel.enabled or channel.status in ("error", "disabled"):
        return False
    if channel.cooldown_until is not None and channel.cooldown_until.timestamp() > now:
        return False
    return not model or not channel.models or model in channel.models


def order_channels(
    channels: Sequence[Channel],
    model: str | None,
    *,
    pinned: str | None = None,
    rng: random.Random | None = None,
    now: float | None = None,
) -> list[Channel]:
    """The try order. A pinned channel (the caller asked for it) is the only candidate."""
    now = time.time() if now is None else now
    rng = rng or random.Random()
    if pinned is not None:
        return [c for c in channels if c.id == pinned and usable(c, model, now)]
    tiers: dict[int, list[Channel]] = {}
    for channel in channels:
        if usable(channel, model, now):
            tiers.setdefault(channel.priority, []).append(channel)
    ordered: list[Channel] = []
    for priority in sorted(tiers):
        pool = list(tiers[priority])
        while pool:  # weighted random without replacement
            pick = rng.choices(pool, weights=[c.weight for c in pool])[0]
            pool.remove(pick)
            ordered.append(pick)
    return ordered


def pick_key(channel: Channel, rng: random.Random | None = None) -> str | None:
    keys = [k for k in channel.api_keys if k.get("enabled", True)]
    if keys:
        rng = rng or random.Random()
        return str(rng.choices(keys, weights=[int(k.get("weight", 1)) for k in keys])[0]["key"])
    return channel.api_key
