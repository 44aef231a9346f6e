"""The global rate limit (API.md §2) and the bus-down guard, as one ASGI middleware.

Counting happens in NATS, not in the edge: each request adds 1 to the JetStream counter
`ratelimit.<window>.<client>` (ADR-49) and the ack carries the new total, so every edge instance
shares one count per client per 60 s window. The client is the token's subject when the request
carries a valid token, else its address. `/health` is exempt; a stream counts once, at connect."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client as NATS

from bus import subjects

log = logging.getLogger("chatbus.ratelimit")

WINDOW = 60
EXEMPT_PATHS = frozenset({"/health", "/"})
# The panel's files and the docs UI's assets: public, served from memory, and ~15 of them on a first
# visit; counting them would spend a quarter of a browser user's minute before any API call.
EXEMPT_PREFIXES = ("/panel/", "/schema-assets/")
COUNTER_TIMEOUT = 0.5


class _CounterAck(msgspec.Struct):
    val: str = "0"
    error: dict[str, Any] | None = None


_decode_ack = msgspec.json.Decoder(_CounterAck).decode


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds at which the window ends
    retry_after: int  # whole seconds from the count until `reset`, at least 1

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]


class RateLimiter:
    def __init__(self, nc: NATS, clock: Callable[[], float] = time.time) -> None:
        self.nc = nc
        # The wall clock the windows are cut from; a test sets it to place requests in a window.
        self.clock = clock
        self._last_failure_log = 0.0

    async def hit(self, client_key: str, limit: int) -> Verdict | None:
        """Count one request; None when the limiter is off or cannot count (it fails open)."""
        if limit <= 0:
            return None
        now = self.clock()
        window = int(now // WINDOW)
        reset = (window + 1) * WINDOW
        digest = hashlib.blake2b(client_key.encode(), digest_size=12).hexdigest()
        try:
            msg = await self.nc.request(
                subjects.rate_limit_counter(window, digest), b"", headers={"Nats-Incr": "1"}, timeout=COUNTER_TIMEOUT
            )
            ack = _decode_ack(msg.data)
            if ack.error:
                raise RuntimeError(str(ack.error))
            count = int(ack.val)
        except (nats.errors.Error, RuntimeError, ValueError, msgspec.DecodeError) as exc:
            if now - self._last_failure_log > 10:
                self._last_failure_log = now
                log.warning("rate limiter cannot count (%r); letting requests through", exc)
            return None
        return Verdict(count <= limit, limit, max(0, limit - count), reset, max(1, reset - int(now)))
