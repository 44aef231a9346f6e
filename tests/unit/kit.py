"""A given/when/then kit for the pure deciders of every domain.

    kit = Kit(domain.evolve, PresetState("p1"))
    kit.given(PresetCreated(...)).when(domain.decide_update, {"name": "B"}, None).then(PresetUpdated(...))
    kit.given().when(domain.decide_delete, None).then_error("PRESET_NOT_FOUND")

`given` folds past events through the domain's own `evolve`; `when` calls a decide function with the
folded state as its first argument; `then` compares the decided events by type and data, checks that
each is a registered event type (an unregistered one would be published as `events.misc.*`), and folds
them on, so a scenario can continue with another `when`.

Events are written as the schema Structs. Each one makes the store's round trip before `evolve`
sees it (`_stored`, then `CATALOG.decode`), so a Struct that would not survive being stored and
read back fails here, not in production.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import msgspec
import pytest

from bus.eventstore import event_from_struct
from schemas.errors import DomainError
from services.registry import CATALOG

S = TypeVar("S")
Evolve = Callable[[S, Any], S]


def _stored(event: msgspec.Struct) -> tuple[str, dict[str, Any]]:
    """An event as the store keeps it and evolve reads it: the production conversion, not a copy of it."""
    new = event_from_struct(event)
    return new.event_type, new.data


def _typed(event: msgspec.Struct) -> Any:
    """The event as evolve receives it from the store: stored, then decoded by the catalog. An event
    of no domain (a test's own) reaches evolve as it is."""
    event_type, data = _stored(event)
    if event_type not in CATALOG:
        return event
    return CATALOG.decode(event_type, CATALOG.get(event_type).version, data)


def describe(events: Sequence[msgspec.Struct]) -> list[tuple[str, dict[str, Any]]]:
    """Events as comparable (type, data) pairs; a mismatch then shows both sides field by field."""
    return [_stored(event) for event in events]


def check_registered(events: Sequence[msgspec.Struct]) -> None:
    """Each event type is declared by a DomainModule, and its stored data decodes back into it."""
    for event in events:
        event_type, data = _stored(event)
        assert event_type in CATALOG, f"{event_type} is declared by no DomainModule (services/registry.py CATALOG)"
        struct = CATALOG.get(event_type).struct
        assert type(event) is struct, f"{event_type} is registered as {struct.__name__}"
        assert CATALOG.decode(event_type, CATALOG.get(event_type).version, data) == event


class Kit(Generic[S]):
    """The decider harness of one domain: its evolve and the state of a stream with no events."""

    def __init__(self, evolve: Evolve[S], initial: S) -> None:
        self._evolve = evolve
        self.initial = initial

    def apply(self, state: S, events: Sequence[msgspec.Struct]) -> S:
        for event in events:
            state = self._evolve(state, _typed(event))
        return state

    def fold(self, *events: msgspec.Struct) -> S:
        return self.apply(self.initial, events)

    def given(self, *events: msgspec.Struct) -> Given[S]:
        return Given(self, self.fold(*events))

    def given_state(self, state: S) -> Given[S]:
        """A state that no event history can produce cheaply (or a hand-made corner case)."""
        return Given(self, state)


class Given(Generic[S]):
    def __init__(self, kit: Kit[S], state: S) -> None:
        self.kit = kit
        self.state = state

    def when(self, decide: Callable[..., Any], *args: Any, **kwargs: Any) -> When[S]:
        """Call `decide(state, *args, **kwargs)`; a DomainError is kept for `then_error`."""
        try:
            return When(self, decide(self.state, *args, **kwargs), None)
        except DomainError as exc:
            return When(self, None, exc)


class When(Generic[S]):
    def __init__(self, given: Given[S], result: Any, error: DomainError | None) -> None:
        self.given = given
        self.result = result
        self.error = error

    def _events(self) -> list[msgspec.Struct]:
        if self.error is not None:
            pytest.fail(f"expected events, the decider refused: {self.error.code}: {self.error.message}")
        assert isinstance(self.result, list), f"the decider returned {type(self.result).__name__}, not a list"
        return self.result

    def then(self, *expected: msgspec.Struct) -> Given[S]:
        """Exactly these events, in this order. Returns the state after them, to go on with `when`."""
        events = self._events()
        assert describe(events) == describe(expected)
        check_registered(events)
        return Given(self.given.kit, self.given.kit.apply(self.given.state, events))

    def then_nothing(self) -> Given[S]:
        assert describe(self._events()) == []
        return self.given

    def then_streams(self, expected: dict[str, Sequence[msgspec.Struct]]) -> dict[str, list[msgspec.Struct]]:
        """For deciders that write several streams at once: events per stream id."""
        if self.error is not None:
            pytest.fail(f"expected events, the decider refused: {self.error.code}: {self.error.message}")
        assert isinstance(self.result, dict), f"the decider returned {type(self.result).__name__}, not a dict"
        assert {k: describe(v) for k, v in self.result.items()} == {k: describe(v) for k, v in expected.items()}
        for events in self.result.values():
            check_registered(events)
        return self.result

    def then_error(
        self, code: str, *, status: int | None = None, details: Any = None, message_has: str | None = None
    ) -> DomainError:
        if self.error is None:
            pytest.fail(f"expected {code}, the decider decided {self.result!r}")
        assert self.error.code == code, f"expected {code}, got {self.error.code}: {self.error.message}"
        if status is not None:
            assert self.error.status == status
        if details is not None:
            assert self.error.details == details
        if message_has is not None:
            assert message_has in self.error.message, self.error.message
        return self.error
