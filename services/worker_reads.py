"""What a worker process reads on every chat turn (presets, enabled channels, group configs, tool
settings), kept in memory instead of read from Postgres per turn, and a turn's in-process shortcuts.

A cached read stays correct because every write that changes it invalidates it:
- a write committed by this process: the store's projectors note which kinds the transaction touched
  (per task) and the store's `on_commit` drops them right after the commit, before the command's
  reply leaves, so read-your-write over HTTP holds through one worker;
- a write committed by another process: its relayed event (`events.<domain>.<Type>`) drops them a
  few milliseconds later. Relayed events mask secrets, so an entry is never built from an event: the
  next read loads it from Postgres;
- a missed event (NATS away): a reconnect drops everything, and no entry is older than `MAX_AGE`.

A load that overlaps an invalidation is used for its own turn but not kept (a generation count), so
a stale row read just before a commit never outlives it. Entries are keyed by the exact id asked for
(a group's config is never served for another group), and absent rows are cached as absent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from bus import db, subjects
from bus.eventstore import EventStore, RecordedEvent
from schemas.channels import Channel, ChannelCreated, ChannelDeleted, ChannelStatusChanged, ChannelUpdated
from schemas.envelope import CommandEnvelope, CommandReply, ErrorInfo
from schemas.group_admin import GroupConfigDeleted, GroupConfigSet
from schemas.presets import (
    DefaultPresetChanged,
    Preset,
    PresetCreated,
    PresetDefaultChanged,
    PresetDeleted,
    PresetUpdated,
)
from schemas.tools import ToolCategoryToggled, ToolDangerousSet, ToolToggled
from services.channels import queries as channel_queries
from services.group_admin import queries as group_queries
from services.presets import queries as preset_queries

if TYPE_CHECKING:
    from services.module import WorkerContext

log = logging.getLogger("chatbus.reads")

T = TypeVar("T")
Loader = Callable[[asyncpg.Pool], Awaitable[T]]

MAX_AGE = 30.0  # the safety net: an entry is reloaded at least this often
MAX_ENTRIES = 10_000  # per kind (group configs grow with the groups a bot is in)

PRESETS, CHANNELS, GROUPS, TOOL_SETTINGS = "presets", "channels", "groups", "tool_settings"

# Which kinds each event type invalidates, and the domains whose relayed events are listened to.
_INVALIDATES: dict[str, str] = {
    **{t.__name__: PRESETS for t in (PresetCreated, PresetUpdated, PresetDeleted, PresetDefaultChanged)},
    DefaultPresetChanged.__name__: PRESETS,
    **{t.__name__: CHANNELS for t in (ChannelCreated, ChannelUpdated, ChannelDeleted, ChannelStatusChanged)},
    **{t.__name__: GROUPS for t in (GroupConfigSet, GroupConfigDeleted)},
    **{t.__name__: TOOL_SETTINGS for t in (ToolToggled, ToolCategoryToggled, ToolDangerousSet)},
}
_DOMAINS = ("presets", "channels", "group_admin", "tools")

CommandFn = Callable[[CommandEnvelope], Awaitable[CommandReply]]


@dataclass
class _Entry:
    value: Any
    loaded_at: float


class WorkerReads:
    def __init__(self, pool: asyncpg.Pool, nc: NATS) -> None:
        self.pool = pool
        self.nc = nc
        self._entries: dict[str, dict[Hashable, _Entry]] = {}
        self._generation: dict[str, int] = {}
        self._subs: list[Subscription] = []
        self._live = False  # entries are kept only while the relayed events are listened to
        self._reconnects = 0
        # Kinds a transaction touched, by the task that runs it, until its commit (or the task's end).
        self._pending: weakref.WeakKeyDictionary[asyncio.Task[Any], set[str]] = weakref.WeakKeyDictionary()
        # Commands this process serves, by "<domain>.<action>", that a turn calls directly instead of
        # over NATS (`tools.list`, `tools.call`, `chat.send` from the pipeline): any worker of the
        # domain may answer, and this one is as good, without the round trip.
        self.local: dict[str, CommandFn] = {}

    # -- reads ---------------------------------------------------------------------------------------

    async def get(self, kind: str, key: Hashable, load: Loader[T]) -> T:
        """The cached value of (kind, key), loaded with `load` when absent, invalidated or too old."""
        self._check_connection()
        now = time.monotonic()
        entries = self._entries.setdefault(kind, {})
        entry = entries.get(key)
        if entry is not None and now - entry.loaded_at < MAX_AGE:
            return entry.value  # type: ignore[no-any-return]
        generation = self._generation.get(kind, 0)
        value = await load(self.pool)
        if self._live and self._generation.get(kind, 0) == generation:
            if len(entries) >= MAX_ENTRIES:
                entries.clear()
            entries[key] = _Entry(value, now)
        return value

    async def preset(self, preset_id: str) -> Preset | None:
        return await self.get(PRESETS, preset_id, lambda pool: preset_queries.get_preset(pool, preset_id))

    async def default_preset(self) -> Preset | None:
        return await self.get(PRESETS, None, preset_queries.get_default_preset)

    async def group(self, group_id: str) -> dict[str, Any] | None:
        """The group's own config row (`overrides` and all), None when it has none."""
        return await self.get(GROUPS, group_id, lambda pool: group_queries.get_group(pool, group_id))

    async def enabled_channels(self) -> list[Channel]:
        return await self.get(CHANNELS, None, channel_queries.enabled_channels)

    def invalidate(self, *kinds: str) -> None:
        for kind in kinds:
            self._generation[kind] = self._generation.get(kind, 0) + 1
            self._entries.pop(kind, None)

    def invalidate_all(self) -> None:
        self.invalidate(*set(self._entries) | set(_INVALIDATES.values()))

    def _check_connection(self) -> None:
        reconnects = self.nc.stats.get("reconnects", 0)
        if reconnects != self._reconnects:  # events may have been missed while NATS was away
            self._reconnects = reconnects
            self.invalidate_all()

    async def call_local(self, command: str, envelope: CommandEnvelope) -> CommandReply | None:
        """Run `command` ("<domain>.<action>") in this process, None when it does not serve it. A
        failure is answered as the worker runtime answers it over NATS (bus/worker.py)."""
        handler = self.local.get(command)
        if handler is None:
            return None
        try:
            return await handler(envelope)
        except asyncpg.DataError as exc:
            return CommandReply(ok=False, error=ErrorInfo("VALIDATION_ERROR", f"invalid data: {exc}", 400))
        except db.UNAVAILABLE:
            return CommandReply(ok=False, error=ErrorInfo("UNAVAILABLE", "the database is unavailable; retry", 503))
        except Exception as exc:
            log.exception("command %s failed in process", command)
            return CommandReply(
                ok=False, error=ErrorInfo("INTERNAL_ERROR", f"command failed: {type(exc).__name__}", 500)
            )

    # -- invalidation --------------------------------------------------------------------------------

    async def _note_local(self, conn: asyncpg.Connection, recorded: RecordedEvent) -> None:
        """A projector: runs inside the writing transaction, for each event it appends."""
        kind = _INVALIDATES.get(recorded.event_type)
        if kind is None:
            return
        # Loads already under way may read the row before this commit: they must not be kept.
        self.invalidate(kind)
        task = asyncio.current_task()
        if task is not None:
            self._pending.setdefault(task, set()).add(kind)

    def _flush_local(self) -> None:
        """After a commit, in the committing task: what it wrote is read fresh from now on."""
        task = asyncio.current_task()
        kinds = self._pending.pop(task, None) if task is not None else None
        if kinds:
            self.invalidate(*kinds)

    async def _on_event(self, msg: Msg) -> None:
        kind = _INVALIDATES.get(msg.subject.rsplit(".", 1)[-1])
        if kind is not None:
            self.invalidate(kind)

    def attach(self, store: EventStore) -> None:
        store.projectors.append(self._note_local)
        previous = store.on_commit

        def on_commit() -> None:
            if previous is not None:
                previous()
            self._flush_local()

        store.on_commit = on_commit

    async def start(self) -> None:
        for domain in _DOMAINS:
            self._subs.append(await self.nc.subscribe(f"{subjects.event(domain, '*')}", cb=self._on_event))
        self._reconnects = self.nc.stats.get("reconnects", 0)
        self.invalidate_all()  # anything loaded before the subscriptions could have missed an event
        self._live = True

    async def stop(self) -> None:
        self._live = False
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        self.invalidate_all()


_BY_STORE: weakref.WeakKeyDictionary[EventStore, WorkerReads] = weakref.WeakKeyDictionary()


def worker_reads(ctx: WorkerContext) -> WorkerReads:
    """The worker's one `WorkerReads`, shared by its domains; created (and started in the background:
    until then every read goes to Postgres) by the first domain that asks."""
    reads = _BY_STORE.get(ctx.store)
    if reads is not None:
        return reads
    reads = WorkerReads(ctx.store.pool, ctx.nc)
    reads.attach(ctx.store)
    _BY_STORE[ctx.store] = reads
    starting = asyncio.get_running_loop().create_task(reads.start(), name="worker-reads-start")

    async def stop() -> None:
        with contextlib.suppress(Exception):
            await starting
        await reads.stop()

    ctx.on_stop.append(stop)
    return reads
