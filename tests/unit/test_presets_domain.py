"""Pure tests of the presets decider: evolve, the decide_* rules, copy_fields and derive_id."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from schemas.errors import DomainError
from schemas.presets import (
    DefaultPresetChanged,
    PresetCreated,
    PresetDefaultChanged,
    PresetDeleted,
    PresetUpdated,
)
from services.presets import domain
from services.presets.domain import DEFAULT_STREAM, DefaultState, PresetState, stream_id
from tests.unit.kit import Kit


class _Unrelated(msgspec.Struct):
    """An event of no interest to the evolve function under test."""


def ev(event_type: str, data: dict[str, Any]) -> Any:
    """A typed event from its stored form, as the store decodes it."""
    if event_type in domain.EVENTS:
        return domain.EVENTS.decode(event_type, 1, data)
    return _Unrelated()


def kit(preset_id: str = "helper") -> Kit[PresetState]:
    return Kit(domain.evolve, PresetState(preset_id))


def fold(preset_id: str, events: list[msgspec.Struct]) -> PresetState:
    return kit(preset_id).fold(*events)


def created(preset_id: str = "helper", type_: str = "user", **fields: Any) -> PresetState:
    """A preset state as it is after a PresetCreated decided by the domain itself."""
    events = domain.decide_create(PresetState(preset_id), {"name": "Helper", **fields}, type_)
    return fold(preset_id, events)


def error_of(call: Any, *args: Any) -> DomainError:
    with pytest.raises(DomainError) as info:
        call(*args)
    return info.value


# ---- evolve ----


def test_evolve_created_sets_existence_type_fields_and_version() -> None:
    state = domain.evolve(
        PresetState("p1"), ev("PresetCreated", {"id": "p1", "type": "system", "fields": {"name": "A"}})
    )
    assert state == PresetState("p1", exists=True, type="system", is_default=False, fields={"name": "A"}, version=1)


def test_evolve_updated_merges_changes() -> None:
    state = PresetState("p1", True, fields={"name": "A", "model": "m1"}, version=1)
    state = domain.evolve(state, ev("PresetUpdated", {"changes": {"model": "m2"}}))
    assert state.fields == {"name": "A", "model": "m2"}
    assert state.version == 2
    assert state.exists


def test_evolve_deleted_resets_state_but_keeps_version() -> None:
    state = PresetState("p1", True, type="user", is_default=False, fields={"name": "A"}, version=3)
    state = domain.evolve(state, ev("PresetDeleted", {"id": "p1"}))
    assert state == PresetState("p1", exists=False, version=4)


def test_evolve_default_changed_toggles_flag() -> None:
    state = PresetState("p1", True, fields={"name": "A"}, version=1)
    state = domain.evolve(state, ev("PresetDefaultChanged", {"is_default": True}))
    assert state.is_default and state.version == 2
    state = domain.evolve(state, ev("PresetDefaultChanged", {"is_default": False}))
    assert not state.is_default and state.version == 3


def test_evolve_unknown_event_only_bumps_version() -> None:
    before = PresetState("p1", True, fields={"name": "A"}, version=5)
    after = domain.evolve(before, ev("SomethingElse", {"x": 1}))
    assert after.version == 6
    assert (after.exists, after.fields, after.type) == (before.exists, before.fields, before.type)


def test_evolve_full_history_fold() -> None:
    state = fold(
        "p1",
        [
            PresetCreated(id="p1", type="user", fields={"name": "A"}),
            PresetUpdated(changes={"name": "B"}),
            PresetDefaultChanged(is_default=True),
            PresetDefaultChanged(is_default=False),
            PresetDeleted(id="p1"),
            PresetCreated(id="p1", type="user", fields={"name": "C"}),
        ],
    )
    assert state == PresetState("p1", True, "user", False, {"name": "C"}, 6)


def test_evolve_default_stream() -> None:
    state = domain.evolve_default(DefaultState(), ev("DefaultPresetChanged", {"preset_id": "a", "previous_id": None}))
    assert state == DefaultState("a", 1)
    state = domain.evolve_default(state, ev("DefaultPresetChanged", {"preset_id": "b", "previous_id": "a"}))
    assert state == DefaultState("b", 2)
    assert domain.evolve_default(state, ev("Other", {})) == DefaultState("b", 3)


# ---- decide_create ----


@pytest.mark.parametrize("bad_id", ["ab", "a" * 51, "has space", "semi;colon", "ünï", ""])
def test_create_rejects_bad_id(bad_id: str) -> None:
    err = error_of(domain.decide_create, PresetState(bad_id), {"name": "X"}, "user")
    assert err.code == "VALIDATION_ERROR"
    assert err.status == 400


def test_create_rejects_id_with_trailing_newline() -> None:
    err = error_of(domain.decide_create, PresetState("abc\n"), {"name": "X"}, "user")
    assert err.code == "VALIDATION_ERROR"


@pytest.mark.parametrize("good_id", ["abc", "a" * 50, "A_b-9"])
def test_create_accepts_id_bounds(good_id: str) -> None:
    assert len(domain.decide_create(PresetState(good_id), {"name": "X"}, "user")) == 1


def test_create_refuses_existing_preset() -> None:
    err = error_of(domain.decide_create, created("helper"), {"name": "Other"}, "user")
    assert err.code == "PRESET_EXISTS"
    assert err.status == 409


def test_create_after_delete_is_allowed() -> None:
    state = domain.evolve(created("helper"), ev("PresetDeleted", {"id": "helper"}))
    events = domain.decide_create(state, {"name": "B"}, "user")
    assert isinstance(events[0], PresetCreated)
    assert events[0].fields["name"] == "B"


def test_create_normalises_fields() -> None:
    [event] = domain.decide_create(
        PresetState("helper"),
        {"name": "Helper", "systemPrompt": "be nice", "modelParams": {"temperature": 0.7}, "unknownKey": 1},
        "system",
    )
    assert isinstance(event, PresetCreated)
    assert event.id == "helper"
    assert event.type == "system"
    assert event.fields == {
        "name": "Helper",
        "description": "",
        "category": "general",
        "systemPrompt": "be nice",
        "model": "",
        "modelParams": {"temperature": 0.7},
        "persona": {},
        "context": {},
        "tools": {},
        "enabled": True,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "X", "modelParams": {"temperature": 2.5}},
        {"name": "X", "modelParams": {"temperature": -0.1}},
        {"name": "X", "modelParams": {"temperature": "hot"}},
        {"name": ""},
        {"name": "x" * 101},
        {"description": "no name"},
        {"name": "X", "systemPrompt": "p" * 10001},
        {"name": "X", "context": {"maxMessages": 0}},
    ],
)
def test_create_invalid_fields_is_validation_error(fields: dict[str, Any]) -> None:
    err = error_of(domain.decide_create, PresetState("helper"), fields, "user")
    assert err.code == "VALIDATION_ERROR"
    assert err.status == 400
    assert err.details


def test_invalid_temperature_names_the_field() -> None:
    err = error_of(
        domain.decide_create, PresetState("helper"), {"name": "X", "modelParams": {"temperature": 3}}, "user"
    )
    assert "temperature" in err.message


# ---- decide_update ----


def test_update_not_found() -> None:
    err = error_of(domain.decide_update, PresetState("nope"), {"name": "X"}, None)
    assert err.code == "PRESET_NOT_FOUND"
    assert err.status == 404


def test_update_version_conflict_carries_details() -> None:
    state = created()
    err = error_of(domain.decide_update, state, {"name": "X"}, 7)
    assert err.code == "VERSION_CONFLICT"
    assert err.status == 409
    assert err.details == [{"currentVersion": 1, "expectedVersion": 7}]


def test_update_with_matching_expected_version() -> None:
    [event] = domain.decide_update(created(), {"name": "X"}, 1)
    assert event == PresetUpdated(changes={"name": "X"})


def test_create_update_delete_scenario() -> None:
    fields = domain.validate_fields({"name": "A"})
    after = (
        kit("pre1")
        .given()
        .when(domain.decide_create, {"name": "A"}, "user")
        .then(PresetCreated(id="pre1", type="user", fields=fields))
        .when(domain.decide_update, {"name": "B"}, 1)
        .then(PresetUpdated(changes={"name": "B"}))
    )
    after.when(domain.decide_update, {"name": "C"}, 1).then_error("VERSION_CONFLICT")
    after.when(domain.decide_delete, 2).then(PresetDeleted(id="pre1")).when(domain.decide_delete, None).then_error(
        "PRESET_NOT_FOUND", status=404
    )


def test_update_no_op_emits_nothing() -> None:
    state = created(model="m1")
    assert domain.decide_update(state, {"name": "Helper", "model": "m1"}, None) == []
    assert domain.decide_update(state, {}, None) == []


def test_update_keeps_only_changed_keys() -> None:
    state = created(model="m1", description="d")
    [event] = domain.decide_update(state, {"name": "Helper", "model": "m2", "description": "d"}, None)
    assert event == PresetUpdated(changes={"model": "m2"})


def test_update_normalises_nested_changes() -> None:
    state = created()
    [event] = domain.decide_update(state, {"modelParams": {"temperature": 1, "top_p": None}}, None)
    assert isinstance(event, PresetUpdated)
    assert event.changes == {"modelParams": {"temperature": 1}}


def test_update_invalid_change_is_validation_error() -> None:
    err = error_of(domain.decide_update, created(), {"modelParams": {"temperature": 9}}, None)
    assert err.code == "VALIDATION_ERROR"


def test_update_ignores_unknown_keys() -> None:
    assert domain.decide_update(created(), {"bogus": 1}, None) == []


# ---- decide_delete ----


def test_delete_user_preset() -> None:
    assert domain.decide_delete(created("helper"), None) == [PresetDeleted(id="helper")]
    assert domain.decide_delete(created("helper"), 1) == [PresetDeleted(id="helper")]


def test_delete_not_found() -> None:
    assert error_of(domain.decide_delete, PresetState("nope"), None).code == "PRESET_NOT_FOUND"


def test_delete_version_conflict() -> None:
    err = error_of(domain.decide_delete, created(), 0)
    assert err.code == "VERSION_CONFLICT"
    assert err.details == [{"currentVersion": 1, "expectedVersion": 0}]


def test_delete_system_preset_refused() -> None:
    err = error_of(domain.decide_delete, created("default", "system"), None)
    assert err.code == "SYSTEM_PRESET"
    assert err.status == 403


def test_delete_default_preset_refused() -> None:
    state = domain.evolve(created("helper"), ev("PresetDefaultChanged", {"is_default": True}))
    err = error_of(domain.decide_delete, state, None)
    assert err.code == "SYSTEM_PRESET"
    assert "default" in err.message


# ---- decide_set_default ----


def test_set_default_first_time() -> None:
    target = created("alpha")
    Kit(domain.evolve_default, DefaultState()).given().when(domain.decide_set_default, target, None).then_streams(
        {
            DEFAULT_STREAM: [DefaultPresetChanged(preset_id="alpha", previous_id=None)],
            stream_id("alpha"): [PresetDefaultChanged(is_default=True)],
        }
    )


def test_set_default_moves_and_touches_previous_stream() -> None:
    previous = domain.evolve(created("alpha"), ev("PresetDefaultChanged", {"is_default": True}))
    target = created("beta")
    defaults = Kit(domain.evolve_default, DefaultState())
    given = defaults.given(DefaultPresetChanged(preset_id="alpha", previous_id=None))
    given.when(domain.decide_set_default, target, previous).then_streams(
        {
            DEFAULT_STREAM: [DefaultPresetChanged(preset_id="beta", previous_id="alpha")],
            stream_id("beta"): [PresetDefaultChanged(is_default=True)],
            stream_id("alpha"): [PresetDefaultChanged(is_default=False)],
        }
    )


def test_set_default_previous_gone_is_not_touched() -> None:
    gone = domain.evolve(created("alpha"), ev("PresetDeleted", {"id": "alpha"}))
    out = domain.decide_set_default(DefaultState("alpha", 1), created("beta"), gone)
    assert set(out) == {DEFAULT_STREAM, stream_id("beta")}


def test_set_default_idempotent_when_already_default() -> None:
    target = domain.evolve(created("alpha"), ev("PresetDefaultChanged", {"is_default": True}))
    assert domain.decide_set_default(DefaultState("alpha", 1), target, target) == {}


def test_set_default_not_found() -> None:
    err = error_of(domain.decide_set_default, DefaultState(), PresetState("nope"), None)
    assert err.code == "PRESET_NOT_FOUND"


def test_set_default_disabled_preset_refused() -> None:
    err = error_of(domain.decide_set_default, DefaultState(), created("alpha", enabled=False), None)
    assert err.code == "VALIDATION_ERROR"
    assert "disabled" in err.message


# ---- copy_fields / derive_id ----


def test_copy_fields_default_name() -> None:
    source = created("alpha", systemPrompt="sp")
    fields = domain.copy_fields(source, None)
    assert fields["name"] == "Helper (copy)"
    assert fields["systemPrompt"] == "sp"
    assert source.fields["name"] == "Helper"  # the source state is not mutated


def test_copy_fields_explicit_name() -> None:
    assert domain.copy_fields(created("alpha"), "Twin")["name"] == "Twin"


def test_copy_fields_long_name_truncated_to_valid() -> None:
    source = created("alpha")
    source = domain.evolve(source, ev("PresetUpdated", {"changes": {"name": "n" * 100}}))
    fields = domain.copy_fields(source, None)
    assert len(fields["name"]) == 100
    # The copy is itself a valid preset.
    assert domain.decide_create(PresetState("a-copy"), fields, "user")


def test_copy_fields_missing_source() -> None:
    assert error_of(domain.copy_fields, PresetState("nope"), None).code == "PRESET_NOT_FOUND"


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("My Helper", "My-Helper-"),
        ("  trim me  ", "trim-me-"),
        ("a!!b??c", "a-b-c-"),
        ("ab", "preset-"),
        ("你好", "preset-"),
        ("", "preset-"),
        ("x" * 80, "x" * 40 + "-"),
    ],
)
def test_derive_id(name: str, prefix: str) -> None:
    derived = domain.derive_id(name)
    assert derived.startswith(prefix)
    assert len(derived) == len(prefix) + 8
    assert domain.ID_PATTERN.fullmatch(derived)


def test_derive_id_is_unique() -> None:
    assert len({domain.derive_id("Same Name") for _ in range(50)}) == 50


def test_derive_id_trailing_separator_still_valid() -> None:
    derived = domain.derive_id("a" * 39 + " tail")
    assert domain.ID_PATTERN.fullmatch(derived)
    assert len(derived) <= 50
