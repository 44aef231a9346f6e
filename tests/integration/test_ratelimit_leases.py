"""Rate-limit quota leases (api/ratelimit.py): two edges' limiters share one global count in NATS, each
spending blocks of it locally. The global count stays exact: never more than the limit granted in a
window in total, no lease granted twice, and what a lease does not spend goes back."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import msgspec
import pytest
from nats.aio.client import Client as NATS

from api.ratelimit import LEASE_SHARE, WINDOW, RateLimiter, counter_subject, lease_grant
from bus import nats_conn, subjects
from tests.fakes.clock import FakeClock
from tests.waiting import wait_until

WINDOW_START = 1_800_000_000 // WINDOW * WINDOW
LIMIT = 64 * LEASE_SHARE  # leases of 64 at first, shrinking towards 1 near the limit
CLIENT = "sub:alice"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WINDOW_START + 10.0)


@pytest.fixture
async def connections(nats_url: str) -> AsyncIterator[list[NATS]]:
    ncs = [await nats_conn.connect(nats_url, name=f"edge-{i}") for i in range(2)]
    await nats_conn.ensure_streams(ncs[0])
    try:
        yield ncs
    finally:
        for nc in ncs:
            await nc.close()


@pytest.fixture
async def edges(connections: list[NATS], clock: FakeClock) -> list[RateLimiter]:
    return [RateLimiter(nc, clock=clock) for nc in connections]  # no sweeper: the tests return leases


async def global_count(nc: NATS, limiter: RateLimiter) -> int:
    subject = counter_subject(CLIENT, int(limiter.clock() // WINDOW))
    msg = await nc.jetstream().get_last_msg(subjects.RATE_LIMIT_STREAM, subject, direct=True)
    return int(msgspec.json.decode(msg.data)["val"])


async def allowed(limiter: RateLimiter, n: int) -> int:
    verdicts = await asyncio.gather(*(limiter.hit(CLIENT, LIMIT) for _ in range(n)))
    assert all(v is not None for v in verdicts)
    return sum(1 for v in verdicts if v is not None and v.allowed)


def test_a_grant_never_exceeds_what_is_left_under_the_limit() -> None:
    assert lease_grant(10, 10, 60) == 10
    assert lease_grant(10, 65, 60) == 5  # the counter passed the limit inside this block
    assert lease_grant(10, 75, 60) == 0
    assert lease_grant(1, 61, 60) == 0


async def test_two_edges_never_grant_more_than_the_limit_together(
    edges: list[RateLimiter], connections: list[NATS]
) -> None:
    rng = random.Random(7)
    # Bursts of concurrent requests on both edges at once, far past the limit.
    outcomes = await asyncio.gather(
        *(edges[rng.randrange(2)].hit(CLIENT, LIMIT) for _ in range(LIMIT + 1500)),
    )
    assert all(v is not None for v in outcomes)
    assert sum(1 for v in outcomes if v is not None and v.allowed) == LIMIT
    # Nothing is left unspent on either edge; the counter holds what was granted, plus at most the last
    # refusal's increment on each edge (given back with that edge's next increment or when idle).
    assert [e._leases[CLIENT].left for e in edges] == [0, 0]
    assert LIMIT <= await global_count(connections[0], edges[0]) <= LIMIT + 2
    assert sum([await e.return_leases(idle_for=0.0) for e in edges]) <= 2
    assert await global_count(connections[0], edges[0]) == LIMIT


async def test_a_lease_one_edge_does_not_spend_goes_back_to_the_other(
    edges: list[RateLimiter], connections: list[NATS]
) -> None:
    a, b = edges
    assert await allowed(a, 5) == 5
    held = a._leases[CLIENT].left
    assert held > 0  # a block was taken, and only 5 of it spent
    assert await global_count(connections[0], a) == 5 + held
    # b spends everything else; a's unspent block is not b's to spend.
    assert await allowed(b, LIMIT) == LIMIT - 5 - held
    assert (await b.hit(CLIENT, LIMIT)).allowed is False  # type: ignore[union-attr]
    # a's client goes idle: its block goes back, and b can spend exactly that much more.
    assert await a.return_leases(idle_for=0.0) == held
    assert CLIENT not in a._leases
    assert await allowed(b, held + 10) == held
    assert 5 + (LIMIT - 5 - held) + held == LIMIT


async def test_a_lease_expires_with_its_window(edges: list[RateLimiter], clock: FakeClock) -> None:
    a = edges[0]
    assert await allowed(a, 1) == 1
    assert a._leases[CLIENT].left > 0
    clock.advance(WINDOW)
    verdict = await a.hit(CLIENT, LIMIT)
    assert verdict is not None and verdict.allowed
    # The new window's counter starts from 0: the old block is neither spent nor carried over.
    assert verdict.reset == WINDOW_START + 2 * WINDOW
    assert await a.return_leases(idle_for=3600.0) == 0  # nothing idle; the past window's lease is gone
    assert all(lease.window == WINDOW_START // WINDOW + 1 for lease in a._leases.values())


async def test_a_limit_change_returns_what_the_old_limit_leased(
    edges: list[RateLimiter], connections: list[NATS]
) -> None:
    a, b = edges
    assert await allowed(a, 1) == 1
    held = a._leases[CLIENT].left
    assert held > 0
    # The limit drops to 3: a's block goes back with its next increment, so the count is what was spent.
    new = await a.hit(CLIENT, 3)
    assert new is not None and new.allowed and new.remaining == 1
    assert await global_count(connections[0], a) == 2
    verdicts = [await b.hit(CLIENT, 3) for _ in range(2)]
    assert [v.allowed for v in verdicts if v is not None] == [True, False]


async def test_small_limits_count_every_request_exactly(edges: list[RateLimiter]) -> None:
    a = edges[0]
    remaining = []
    for i in range(60):
        verdict = await edges[i % 2].hit(CLIENT, 60)
        assert verdict is not None and verdict.allowed
        remaining.append(verdict.remaining)
    assert remaining == list(range(59, -1, -1))  # a lease of 1 each time: the headers stay exact
    assert (await a.hit(CLIENT, 60)).allowed is False  # type: ignore[union-attr]


async def test_a_running_limiter_gives_back_an_idle_lease_by_itself(connections: list[NATS], clock: FakeClock) -> None:
    limiter = RateLimiter(connections[0], clock=clock)
    await limiter.start()
    try:
        assert await allowed(limiter, 3) == 3
        assert await global_count(connections[1], limiter) > 3  # a block was taken

        async def only_the_spent_part_counted() -> bool:
            return await global_count(connections[1], limiter) == 3

        # Nothing asks for it: the sweeper returns it once the client has been idle for IDLE_RETURN.
        await wait_until(only_the_spent_part_counted, timeout=10, interval=0.05, message="the idle lease returned")
        assert CLIENT not in limiter._leases
    finally:
        await limiter.stop()
