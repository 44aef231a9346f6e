"""The global rate limit (API.md §2) and the bus-down guard, as one ASGI middleware.

Counting happens in NATS, not in the edge: the JetStream counter `ratelimit.<window>.<client>` (ADR-49)
holds, per client per 60 s window, how much of the limit every edge together has taken. The client is
the token's subject when the request carries a valid token, else its address. `/health` is exempt; a
stream counts once, at connect.

Quota leases: an edge does not add 1 per request. It adds a block (a lease) and spends it locally, one
request at a time, with no round trip; when the lease is spent it takes another. The ack of each
increment carries the new total, so an edge grants itself only the part of its block that still fits
under the limit: the counter is never below what the edges have granted, and no window ever lets more
than `limit` requests through in total, however many edges share it. A lease is at most 1/LEASE_SHARE
of what the counter leaves (and MAX_LEASE): with the default limit of 60 that is one request per
increment, exactly as without leases, and near any limit leases shrink to 1, so little sits unspent
on one edge while another refuses. What a lease does not use goes back (a negative increment) once its
client has been idle on this edge for IDLE_RETURN seconds, when the limit changes, and when the edge
stops; otherwise it expires with its window."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

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
LEASE_SHARE = 64
MAX_LEASE = 1000
LOOK_AGAIN = -1
STOP_RETURN_TIMEOUT = 2.0
IDLE_RETURN = 2.0  # seconds without a request before a client's unspent lease goes back


class _CounterAck(msgspec.Struct):
    val: str = "0"
    error: dict[str, object] | None = None


_decode_ack = msgspec.json.Decoder(_CounterAck).decode


class CounterError(Exception):
    pass


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


@dataclass
class Lease:
    """One client's quota on this edge in one window."""

    subject: str
    window: int
    limit: int
    left: int = 0  # granted to this edge and not yet spent
    seen: int = 0  # the global counter after this edge's last increment (every edge's leases in it)
    used_at: float = 0.0  # monotonic time of the last request
    owed: int = 0  # unspent quota to give back with the next increment
    # An increment in flight: how much it granted, None if the counter failed; LOOK_AGAIN for a return.
    pending: asyncio.Future[int | None] | None = None

    def size(self) -> int:
        return max(1, min(MAX_LEASE, (self.limit - self.seen) // LEASE_SHARE))


def counter_subject(client_key: str, window: int) -> str:
    return subjects.rate_limit_counter(window, hashlib.blake2b(client_key.encode(), digest_size=12).hexdigest())


def lease_grant(size: int, total: int, limit: int) -> int:
    """How much of an increment of `size` that brought the counter to `total` fits under `limit`."""
    return max(0, min(size, limit - (total - size)))


class RateLimiter:
    def __init__(self, nc: NATS, clock: Callable[[], float] = time.time) -> None:
        self.nc = nc
        # The wall clock the windows are cut from; a test sets it to place requests in a window.
        self.clock = clock
        self._last_failure_log = 0.0
        self._leases: dict[str, Lease] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="ratelimit-lease-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        with contextlib.suppress(TimeoutError):  # a stop never waits long on a slow bus
            await asyncio.wait_for(self.return_leases(idle_for=0.0), STOP_RETURN_TIMEOUT)

    async def hit(self, client_key: str, limit: int) -> Verdict | None:
        """Count one request; None when the limiter is off or cannot count (it fails open)."""
        if limit <= 0:
            return None
        now = self.clock()
        window = int(now // WINDOW)
        while True:
            # Looked up again after each wait: the limit may have changed, or the window ended, meanwhile.
            lease = self._lease(client_key, window, limit)
            lease.used_at = time.monotonic()
            if lease.left > 0:
                break
            if lease.pending is not None:
                # Another request of this client is taking a lease (or the sweeper returning one): share its
                # outcome rather than add an increment of our own. Refused or uncounted, so is this one.
                granted = await asyncio.shield(lease.pending)
                if granted is not None and granted != 0:
                    continue  # look again: what it granted may be spent already
            else:
                granted = await self._take(lease)
            if granted is None:
                return None
            if granted == 0:
                return self._verdict(False, lease, now)
        lease.left -= 1
        return self._verdict(True, lease, now)

    def _verdict(self, allowed: bool, lease: Lease, now: float) -> Verdict:
        reset = (lease.window + 1) * WINDOW
        # What is left for this client as far as this edge knows: the limit less every edge's leases, plus
        # what this edge still holds of its own. Exact with one edge, or with leases of 1.
        remaining = max(0, lease.limit - lease.seen + lease.left) if allowed else 0
        return Verdict(allowed, lease.limit, remaining, reset, max(1, reset - int(now)))

    def _lease(self, client_key: str, window: int, limit: int) -> Lease:
        lease = self._leases.get(client_key)
        if lease is not None and lease.window == window and lease.limit == limit:
            return lease
        new = Lease(counter_subject(client_key, window), window, limit)
        if lease is not None and lease.window == window:
            # The limit changed mid-window: what this edge holds goes back with the next increment (one
            # message, so the count the new limit is checked against is already without it).
            new.owed = lease.left + lease.owed
        self._leases[client_key] = new
        return new

    async def _take(self, lease: Lease) -> int | None:
        """Take a block; how much of it this edge may spend (None: the counter cannot be reached)."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        lease.pending = future
        granted: int | None = None
        try:
            size = lease.size()
            owed, lease.owed = lease.owed, 0
            total = await self._increment(lease.subject, size - owed)
        except CounterError as exc:
            now = time.monotonic()
            if now - self._last_failure_log > 10:
                self._last_failure_log = now
                log.warning("rate limiter cannot count (%s); letting requests through", exc)
            return None
        else:
            granted = lease_grant(size, total, lease.limit)
            lease.seen = total
            lease.left += granted
            # What did not fit (all of it, for a refused request) was never ours to spend: it goes back with
            # the next increment, so the counter holds what was granted and a returned lease can be reused.
            lease.owed += size - granted
            return granted
        finally:
            lease.pending = None
            future.set_result(granted)

    async def _increment(self, subject: str, by: int) -> int:
        try:
            msg = await self.nc.request(subject, b"", headers={"Nats-Incr": str(by)}, timeout=COUNTER_TIMEOUT)
            ack = _decode_ack(msg.data)
            if ack.error:
                raise CounterError(str(ack.error))
            return int(ack.val)
        except (nats.errors.Error, ValueError, msgspec.DecodeError) as exc:
            raise CounterError(repr(exc)) from exc

    async def return_leases(self, *, idle_for: float = IDLE_RETURN) -> int:
        """Give back what idle leases hold and forget leases of past windows; how many requests went back."""
        window = int(self.clock() // WINDOW)
        idle_since = time.monotonic() - idle_for
        returned = 0
        for key, lease in list(self._leases.items()):
            if lease.window != window:
                del self._leases[key]  # its window is over: the unspent part expired with it
                continue
            if lease.pending is not None or lease.used_at > idle_since or not self.nc.is_connected:
                continue  # (with the bus away the quota stays counted: the safe side, and no waiting on it)
            amount, lease.left, lease.owed = lease.left + lease.owed, 0, 0
            if amount > 0:
                # Marked pending while the return is on its way, so that this client's next request here
                # waits for it: its increment then counts against a total that no longer holds the return.
                future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
                lease.pending = future
                try:
                    await self._increment(lease.subject, -amount)
                    returned += amount
                except CounterError:
                    pass  # the quota stays counted until the window ends: the safe side of the limit
                finally:
                    lease.pending = None
                    future.set_result(LOOK_AGAIN)
            if self._leases.get(key) is lease and lease.left == 0 and lease.used_at <= idle_since:
                del self._leases[key]
        return returned

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(IDLE_RETURN / 2)
            try:
                await self.return_leases()
            except Exception:
                log.exception("returning idle rate-limit leases failed")
