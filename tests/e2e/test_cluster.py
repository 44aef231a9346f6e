"""compose.yaml's topology without Docker: a 3-node NATS JetStream cluster (streams at 3 replicas), one
Postgres, 2 edges, 2 workers and the relay, every client given the full server list. One NATS node is
killed (-9) while writes and chat turns flow, then restarted: no acknowledged write is lost, nothing is
applied or published twice, the clients move to the other nodes and the node catches up."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats.errors
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import ServiceUnavailableError

from bus import nats_conn, subjects
from chatbus.devcluster import EmbeddedNatsCluster
from chatbus.devstack import EmbeddedNats
from chatbus.runtime import bootstrap
from tests.e2e.test_chat import add_channel
from tests.fakes.llm import FakeProvider
from tests.stack import ADMIN_PASSWORD, Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

REPLICAS = 3
RETRYABLE = (500, 502, 503, 504)
# A JetStream API request during a leader election times out or is refused: asked again.
JS_RETRY = (AssertionError, nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[EmbeddedNatsCluster]:
    nodes = EmbeddedNatsCluster(tmp_path / "nats")
    await asyncio.to_thread(nodes.start)
    try:
        yield nodes
    finally:
        await asyncio.to_thread(nodes.stop)


@pytest.fixture
async def cluster_stack(cluster: EmbeddedNatsCluster, database: str) -> AsyncIterator[Stack]:
    # What `chatbus migrate` does with compose.yaml's CHATBUS_JETSTREAM_REPLICAS=3; the Stack's own
    # bootstrap then finds the streams there.
    await bootstrap(database, cluster.url, "admin", ADMIN_PASSWORD, jetstream_replicas=REPLICAS)
    s = Stack(cluster.url, database)
    await s.start(edges=0, workers=2)
    # A command caught in flight on a dying node waits for its timeout (504, retried): keep it short.
    for _ in range(2):
        await s.add_edge(command_timeout=2.0)
    try:
        yield s
    finally:
        await s.stop()


class Load:
    """Clients as a real one behaves: each write carries an Idempotency-Key and is retried with the same
    key on a 5xx, a timeout or a refused connection until it is acknowledged."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.acked: dict[str, str] = {}  # idempotency key -> preset id
        self.write_times: list[float] = []
        self.write_spans: list[tuple[float, float]] = []  # (first try, acknowledged), retries included
        self.chat_times: list[float] = []
        self.retries: Counter[str] = Counter()

    async def _retrying(self, send: Any) -> httpx.Response:
        while True:
            try:
                r: httpx.Response = await send()
            except httpx.TransportError as exc:
                self.retries[type(exc).__name__] += 1
            else:
                if r.status_code not in RETRYABLE:
                    return r
                self.retries[str(r.status_code)] += 1
            await asyncio.sleep(0.05)

    async def writes(self, client: httpx.AsyncClient, prefix: str) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            key = f"{prefix}-{n:05d}"
            started = time.monotonic()
            # No id in the body: the edge derives one, so a write applied twice would show as two presets.
            r = await self._retrying(
                lambda key=key: client.post(
                    "/api/presets", json={"name": key}, headers={"Idempotency-Key": key}, timeout=5
                )
            )
            assert r.status_code == 201, r.text
            self.acked[key] = r.json()["data"]["id"]
            self.write_times.append(time.monotonic())
            self.write_spans.append((started, self.write_times[-1]))

    async def chats(self, client: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            r = await self._retrying(lambda: client.post("/api/chat", json={"message": "hi"}, timeout=5))
            assert r.status_code == 200, r.text
            self.chat_times.append(time.monotonic())

    def writes_since(self, t: float) -> int:
        return sum(1 for w in self.write_times if w > t)

    def chats_since(self, t: float) -> int:
        return sum(1 for c in self.chat_times if c > t)


async def js_api(nc: NATS, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = await nc.request(subject, json.dumps(body or {}).encode(), timeout=2)
    doc: dict[str, Any] = json.loads(reply.data)
    if "error" in doc:
        raise AssertionError(f"{subject}: {doc['error']}")
    return doc


def stack_connections(stack: Stack) -> dict[str, NATS]:
    conns = {f"worker-{i}": w.nc for i, w in enumerate(stack.workers)}
    conns |= {f"edge-{i}": e.server.config.app.state["edge"].nc for i, e in enumerate(stack.edges)}
    if stack.relay is not None:
        conns["relay"] = stack.relay.nc
    return conns


def port_of(nc: NATS) -> int | None:
    url = nc.connected_url
    return url.port if url is not None and nc.is_connected else None


async def events_in_jetstream(nc: NATS, expected: int) -> list[str]:
    """Every message of the EVENTS stream, read by an ordered consumer: its Nats-Msg-Id (= event id)."""
    js = nc.jetstream()
    sub = await js.subscribe(subjects.EVENTS_WILDCARD, stream=subjects.EVENTS_STREAM, ordered_consumer=True)
    ids: list[str] = []
    try:
        while len(ids) < expected:
            msg = await sub.next_msg(timeout=5)
            ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
    finally:
        await sub.unsubscribe()
    return ids


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time without a success over [start, end]."""
    points = [start, *sorted(t for t in times if start < t < end), end]
    return max(b - a for a, b in itertools.pairwise(points))


async def assert_consistent(stack: Stack, nc: NATS, load: Load) -> tuple[int, int]:
    """Every acknowledged write once in Postgres (event and projection) and every event once in
    JetStream; returns (events in Postgres, messages in EVENTS)."""
    # 0 acknowledged writes lost, 0 applied twice: one PresetCreated event and one projected row per key.
    async with stack.workers[0].pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, name FROM presets WHERE name LIKE 'cl-%'")
        created = await conn.fetch(
            "SELECT stream_id, count(*) AS n FROM events WHERE event_type = 'PresetCreated'"
            " AND stream_id LIKE 'preset-cl-%' GROUP BY stream_id"
        )
        event_ids = [str(r["event_id"]) for r in await conn.fetch("SELECT event_id FROM events")]
    names = Counter(r["name"] for r in rows)
    assert {n: k for n, k in names.items() if k > 1} == {}, "a write applied twice"
    assert {r["name"]: r["id"] for r in rows} == load.acked, "acknowledged writes missing or extra"
    assert {r["stream_id"] for r in created} == {f"preset-{i}" for i in load.acked.values()}
    assert all(r["n"] == 1 for r in created)

    # JetStream holds each event once, and every event the store has (once the relay has caught up).
    seen: list[int] = []

    async def relayed() -> bool:
        info = await js_api(nc, f"$JS.API.STREAM.INFO.{subjects.EVENTS_STREAM}")
        seen.append(info["state"]["messages"])
        return bool(info["state"]["messages"] >= len(event_ids))

    await wait_until(
        relayed,
        timeout=20,
        message=f"EVENTS holds {len(event_ids)} messages",
        state=lambda: seen[-1:],
        retry_on=JS_RETRY,
    )
    published = await wait_until(
        lambda: events_in_jetstream(nc, seen[-1]), timeout=20, message="EVENTS read back", retry_on=JS_RETRY
    )
    assert len(published) == len(set(published)), "an event published twice"
    assert set(published) == set(event_ids)

    return len(event_ids), len(published)


@dataclass
class Run:
    """A cluster under load, with the node to fail chosen: `nc` watches from one of the other nodes."""

    nc: NATS
    load: Load
    victim: EmbeddedNats
    conns: dict[str, NATS]
    on_victim: list[str]
    tasks: list[asyncio.Task[None]]

    async def finish(self) -> float:
        """Stop the load once every write in flight is acknowledged (retried as long as it takes)."""
        self.load.stop.set()
        await asyncio.gather(*self.tasks)
        return time.monotonic()

    def ports(self) -> dict[str, int | None]:
        return {name: port_of(c) for name, c in self.conns.items()}

    async def wait_moved(self, timeout: float) -> None:
        await wait_until(
            lambda: all(port_of(c) not in (None, self.victim.port) for c in self.conns.values()),
            timeout=timeout,
            message="every client on a surviving node",
            state=self.ports,
        )


@contextlib.asynccontextmanager
async def loaded(cluster: EmbeddedNatsCluster, stack: Stack) -> AsyncIterator[Run]:
    nc = await nats_conn.connect(cluster.url, name="test-observer")
    load = Load()
    fake = await FakeProvider("openai").start()
    tasks: list[asyncio.Task[None]] = []
    try:
        info = await js_api(nc, f"$JS.API.STREAM.INFO.{subjects.EVENTS_STREAM}")
        assert info["config"]["num_replicas"] == REPLICAS and len(info["cluster"]["replicas"]) == REPLICAS - 1

        # The node to fail: the one most of our processes are connected to, made the EVENTS leader too.
        conns = stack_connections(stack)
        ports = Counter(port_of(c) for c in conns.values())
        victim = next(n for n in cluster.nodes if n.port == ports.most_common(1)[0][0])
        on_victim = sorted(name for name, c in conns.items() if port_of(c) == victim.port)
        assert on_victim, {name: port_of(c) for name, c in conns.items()}
        if info["cluster"]["leader"] != victim.server_name:
            await js_api(
                nc,
                f"$JS.API.STREAM.LEADER.STEPDOWN.{subjects.EVENTS_STREAM}",
                {"placement": {"preferred": victim.server_name}},
            )
        await wait_until(
            lambda: _leader_is(nc, victim.server_name),
            timeout=15,
            message=f"EVENTS led by {victim.server_name}",
            retry_on=JS_RETRY,
        )
        if port_of(nc) == victim.port:  # the observer itself must stay up to watch
            await nc.close()
            nc = await nats_conn.connect(",".join(n.url for n in cluster.nodes if n is not victim), name="observer")

        token = await stack.login()
        clients = [stack.client(i, token=token) for i in range(2)]
        await add_channel(clients[0], fake, "cluster-llm")
        for i, c in enumerate(clients):
            tasks += [asyncio.create_task(load.writes(c, f"cl-e{i}-w{j}")) for j in range(2)]
            tasks.append(asyncio.create_task(load.chats(c)))
        await wait_until(lambda: len(load.write_times) >= 30 and load.chat_times, timeout=30, message="load flows")
        yield Run(nc, load, victim, conns, on_victim, tasks)
    finally:
        load.stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await fake.stop()
        await nc.close()


async def test_nats_node_killed_under_load(cluster: EmbeddedNatsCluster, cluster_stack: Stack) -> None:
    stack = cluster_stack
    async with loaded(cluster, stack) as run:
        nc, load, victim = run.nc, run.load, run.victim
        killed_at = time.monotonic()
        victim.kill()
        # Every process of ours reconnects, to another node; writes and chat turns go on.
        await run.wait_moved(timeout=20)
        await wait_until(lambda: load.writes_since(killed_at) >= 40, timeout=30, message="writes after the kill")
        await wait_until(lambda: load.chats_since(killed_at) >= 5, timeout=30, message="chat turns after the kill")
        new_leader = await wait_until(
            lambda: _leader_other_than(nc, victim.server_name),
            timeout=15,
            message="a new EVENTS leader",
            retry_on=JS_RETRY,
        )

        restarted_at = time.monotonic()
        await asyncio.to_thread(victim.start)
        await wait_until(
            lambda: _caught_up(nc, victim.server_name),
            timeout=30,
            interval=0.2,
            message=f"{victim.server_name} current in every stream",
            retry_on=JS_RETRY,
        )
        caught_up_s = time.monotonic() - restarted_at
        await wait_until(lambda: load.writes_since(restarted_at) >= 20, timeout=30, message="writes after the restart")
        ended_at = await run.finish()

        event_count, published = await assert_consistent(stack, nc, load)
        await wait_until(lambda: _caught_up(nc, victim.server_name), timeout=20, retry_on=JS_RETRY)
    before = longest_gap(load.write_times, min(load.write_times), killed_at)
    stall = longest_gap(load.write_times, killed_at, restarted_at)
    after = longest_gap(load.write_times, restarted_at, ended_at)
    slowest = max(end - start for start, end in load.write_spans if end > killed_at)
    print(
        f"\nkilled {victim.server_name} (EVENTS leader; clients on it: {', '.join(run.on_victim)})"
        f"\nwrites acknowledged: {len(load.acked)} ({load.writes_since(killed_at)} after the kill), chat turns: "
        f"{len(load.chat_times)} ({load.chats_since(killed_at)} after the kill); retries: {dict(load.retries)}"
        f"\nlongest write gap: {before * 1000:.0f} ms before the kill, {stall * 1000:.0f} ms after it, "
        f"{after * 1000:.0f} ms after the restart; slowest write after the kill {slowest * 1000:.0f} ms (retries "
        f"included); new EVENTS leader {new_leader}; node current again {caught_up_s:.1f} s after its restart; "
        f"events {event_count} in Postgres = {published} in JetStream"
    )


async def test_nats_node_frozen_under_load(cluster: EmbeddedNatsCluster, cluster_stack: Stack) -> None:
    """A node that stops answering without closing its sockets (a hung host, a partition): only the
    clients' pings notice, and they must within seconds, not nats-py's default 4 minutes."""
    stack = cluster_stack
    async with loaded(cluster, stack) as run:
        nc, load, victim = run.nc, run.load, run.victim
        assert victim.proc is not None
        frozen_at = time.monotonic()
        os.kill(victim.proc.pid, signal.SIGSTOP)
        try:
            await run.wait_moved(timeout=30)
            moved_s = time.monotonic() - frozen_at
            await wait_until(lambda: load.writes_since(frozen_at) >= 40, timeout=30, message="writes after the freeze")
            await wait_until(lambda: load.chats_since(frozen_at) >= 5, timeout=30, message="chats after the freeze")
        finally:
            os.kill(victim.proc.pid, signal.SIGCONT)
        thawed_at = time.monotonic()
        await wait_until(
            lambda: _caught_up(nc, victim.server_name),
            timeout=30,
            interval=0.2,
            message=f"{victim.server_name} current in every stream",
            retry_on=JS_RETRY,
        )
        await wait_until(lambda: load.writes_since(thawed_at) >= 20, timeout=30, message="writes after the thaw")
        await run.finish()
        event_count, published = await assert_consistent(stack, nc, load)
    stall = longest_gap(load.write_times, frozen_at, thawed_at)
    print(
        f"\nfroze {victim.server_name} (EVENTS leader; clients on it: {', '.join(run.on_victim)}); all clients "
        f"moved after {moved_s:.1f} s; longest write gap {stall * 1000:.0f} ms; writes {len(load.acked)}, "
        f"chat turns {len(load.chat_times)}; retries {dict(load.retries)}; events {event_count} = {published}"
    )


async def _leader_is(nc: NATS, name: str) -> bool:
    info = await js_api(nc, f"$JS.API.STREAM.INFO.{subjects.EVENTS_STREAM}")
    return bool(info.get("cluster", {}).get("leader") == name)


async def _leader_other_than(nc: NATS, name: str) -> str | None:
    leader = (await js_api(nc, f"$JS.API.STREAM.INFO.{subjects.EVENTS_STREAM}"))["cluster"].get("leader")
    return leader if leader and leader != name else None


async def _caught_up(nc: NATS, name: str) -> bool:
    """`name` is a current replica with no lag in every stream (the leader reports its followers)."""
    for stream in (subjects.EVENTS_STREAM, subjects.RATE_LIMIT_STREAM, subjects.INBOUND_STREAM):
        cluster = (await js_api(nc, f"$JS.API.STREAM.INFO.{stream}"))["cluster"]
        if cluster.get("leader") == name:
            continue
        replica = next((r for r in cluster.get("replicas", []) if r["name"] == name), None)
        if replica is None or not replica.get("current") or replica.get("lag", 0) != 0:
            return False
    return True
