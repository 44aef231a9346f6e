"""A worker's cache of folded stream states, so that a command need not reload its stream.

A cached state may be stale (another process appended since), so it is only ever trusted where the
unique `(stream_id, stream_version)` will check it: a decision taken on a cached (or assumed-new)
state must append to that stream at exactly the version it was folded at. A stale entry then makes
the append conflict, the entry is dropped, and the command is decided again from Postgres. A decision
that refuses, appends nothing, or only reads a speculative state is taken again on loaded state
before anything is written, so no answer ever rests on an unchecked cache entry."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bus.events import EventCatalog

if TYPE_CHECKING:
    from bus.eventstore import StreamAppend

log = logging.getLogger("chatbus.eventstore")

Evolve = Callable[[Any, Any], Any]

# The streams a worker decides on again soon are its recent ones; past this many the oldest are
# forgotten. Kept small: every cached state is heap the garbage collector walks (bus/gcpolicy.py).
DEFAULT_CAPACITY = 1_000


@dataclass(frozen=True)
class Folded:
    """A stream's state after its first `version` events, and how it was folded."""

    state: Any
    version: int
    evolve: Evolve
    catalog: EventCatalog


class StreamCache:
    """stream id -> its last known folded state (one per stream: the evolve function must match)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Folded] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, stream_id: str, evolve: Evolve) -> Folded | None:
        entry = self._entries.get(stream_id)
        if entry is None or entry.evolve is not evolve:
            return None
        self._entries.move_to_end(stream_id)
        return entry

    def put(self, stream_id: str, folded: Folded) -> None:
        current = self._entries.get(stream_id)
        if current is not None and current.evolve is folded.evolve and current.version > folded.version:
            return  # a concurrent command of this process already cached a newer state
        self._entries[stream_id] = folded
        self._entries.move_to_end(stream_id)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def drop(self, stream_ids: Iterable[str]) -> None:
        for stream_id in stream_ids:
            self._entries.pop(stream_id, None)


@dataclass
class Attempt:
    """What one attempt at a command folded: `trusting` says whether it may use cached or assumed-new
    state (off once an attempt conflicted or refused on such state)."""

    cache: StreamCache
    trusting: bool
    reads: dict[str, Folded] = field(default_factory=dict)
    speculative: set[str] = field(default_factory=set)
    # Rows the inline projections wrote in this attempt, for the decision's `after` (see remember_row).
    rows: dict[Any, Any] = field(default_factory=dict)

    def read(self, stream_id: str, folded: Folded, *, speculative: bool) -> None:
        self.reads[stream_id] = folded
        if speculative:
            self.speculative.add(stream_id)
        else:
            self.cache.put(stream_id, folded)  # loaded state is committed state: safe to keep

    def distrust(self) -> None:
        """Decide again on loaded state only (nothing was written yet)."""
        self.trusting = False
        self.reads, self.speculative = {}, set()

    def checked_by(self, appends: Sequence[StreamAppend]) -> bool:
        """Does every speculative state meet the unique key: a non-empty append at its version?"""
        at = {a.stream_id: a.expected_version for a in appends if a.events}
        return all(at.get(sid) == self.reads[sid].version for sid in self.speculative)

    def committed(self, appends: Sequence[StreamAppend]) -> None:
        """Cache the state each appended stream has now that the appends committed (as stored)."""
        for append in appends:
            before = self.reads.get(append.stream_id)
            if before is None or before.version != append.expected_version or not append.events:
                continue
            try:
                state = before.state
                for event in append.events:
                    event_struct = before.catalog.decode(event.event_type, event.schema_version, event.data)
                    state = before.evolve(state, event_struct)
            except Exception:  # the write is committed whatever happens here: just forget the stream
                log.warning(
                    "could not fold %s after its append; dropped from the cache", append.stream_id, exc_info=True
                )
                self.cache.drop([append.stream_id])
                continue
            folded = Folded(state, before.version + len(append.events), before.evolve, before.catalog)
            self.cache.put(append.stream_id, folded)

    def forget(self) -> None:
        """After a conflict: whichever stream conflicted, its cached state is not to be trusted."""
        self.cache.drop(self.reads)


# The attempt of the command the current task is deciding (set by `EventStore.execute`).
current_attempt: ContextVar[Attempt | None] = ContextVar("chatbus_stream_attempt", default=None)
