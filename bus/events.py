"""Typed events: a catalog from stored `(event_type, schema_version, data)` to msgspec Structs.

Every domain declares its events once (an `EventCatalog` of its Structs, with upcasters for old
schema versions); `services/registry.py` merges the domains' catalogs into one. The store refuses to
append a type no catalog knows, so an event can never be published under a made-up subject."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    """An event type no domain declares (a typo, or a domain missing from the registry)."""


@dataclass(frozen=True)
class EventType:
    domain: str
    struct: type[msgspec.Struct]
    # The schema version new events are written with; older stored data is upcast step by step.
    version: int = 1
    upcasters: Mapping[int, Upcaster] = field(default_factory=dict)  # from version N to N + 1

    @property
    def name(self) -> str:
        return self.struct.__name__


class EventCatalog:
    """Event type name -> its domain and Struct; decodes stored events into Structs."""

    def __init__(self, types: Iterable[EventType] = ()) -> None:
        self._types: dict[str, EventType] = {}
        for t in types:
            if t.name in self._types and self._types[t.name] != t:
                raise ValueError(f"event type {t.name} declared twice")
            self._types[t.name] = t

    @classmethod
    def of(cls, domain: str, *structs: type[msgspec.Struct], **upcast: Mapping[int, Upcaster]) -> EventCatalog:
        """A domain's catalog; `upcast={"PresetCreated": {1: v1_to_v2}}` bumps that type's version."""
        return cls(
            EventType(domain, s, 1 + len(upcast.get(s.__name__, {})), upcast.get(s.__name__, {})) for s in structs
        )

    def merge(self, *others: EventCatalog) -> EventCatalog:
        return EventCatalog([*self._types.values(), *(t for o in others for t in o._types.values())])

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._types

    def __iter__(self) -> Any:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def get(self, event_type: str) -> EventType:
        try:
            return self._types[event_type]
        except KeyError:
            raise UnknownEventType(f"no domain declares the event type {event_type!r}") from None

    def domain_of(self, event_type: str) -> str:
        return self.get(event_type).domain

    def structs(self) -> tuple[type[msgspec.Struct], ...]:
        return tuple(t.struct for t in self._types.values())

    def decode(self, event_type: str, schema_version: int, data: Mapping[str, Any]) -> msgspec.Struct:
        """The stored event as its Struct, upcast from an older schema version first."""
        entry = self.get(event_type)
        raw = dict(data)
        for version in range(schema_version, entry.version):
            raw = entry.upcasters[version](raw)
        return msgspec.convert(raw, entry.struct, strict=False)

    def encode(self, event: msgspec.Struct) -> tuple[str, int, dict[str, Any]]:
        """(event_type, schema_version, data) of a new event; refuses a type no domain declares."""
        entry = self.get(type(event).__name__)
        if not isinstance(event, entry.struct):
            raise UnknownEventType(f"{type(event).__qualname__} is not the declared {entry.struct.__qualname__}")
        return entry.name, entry.version, msgspec.to_builtins(event)
