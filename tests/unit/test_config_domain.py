"""The config decider on the given/when/then kit: merge, validation, masked secrets, rollback."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.config import ConfigChanged, ConfigRolledBack
from services.config import domain
from services.config.domain import ConfigState
from tests.unit.kit import Kit

kit = Kit(domain.evolve, ConfigState())


def changed(patch: dict[str, Any], base: dict[str, Any] | None = None) -> ConfigChanged:
    """The event a patch should produce, built independently of decide_update."""
    before = base or domain.defaults()
    after = domain.deep_merge(before, patch)
    return ConfigChanged(document=after, paths=domain.changed_paths(before, after))


def test_deep_merge_merges_objects_and_replaces_arrays() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged = domain.deep_merge(base, {"a": {"c": [3]}, "e": {"f": 1}})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": {"f": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # not mutated


def test_patch_for_path_and_changed_paths() -> None:
    assert domain.patch_for_path("llm.fallback.maxRetries", 3) == {"llm": {"fallback": {"maxRetries": 3}}}
    assert domain.changed_paths({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": 0}) == ["a.c", "d"]
    assert domain.changed_paths({"a": [1]}, {"a": [1]}) == []


def test_update_merges_into_the_document() -> None:
    patch = {"llm": {"fallback": {"maxRetries": 5}}, "basic": {"debug": True}}
    after = kit.given().when(domain.decide_update, patch, None).then(changed(patch))
    assert after.state.version == 1
    assert after.state.document["llm"]["fallback"] == {"enabled": True, "maxRetries": 5}
    assert after.state.document["llm"]["defaultModel"] == ""  # siblings kept


def test_update_reports_only_changed_paths() -> None:
    [event] = kit.given().when(domain.decide_update, {"basic": {"debug": True, "commandPrefix": "#"}}, None).result
    assert isinstance(event, ConfigChanged)
    assert event.paths == ["basic.debug"]


def test_update_to_the_same_values_is_a_no_op() -> None:
    first = {"context": {"maxMessages": 50}}
    kit.given(changed(first)).when(domain.decide_update, first, 1).then_nothing()


def test_update_version_conflict() -> None:
    kit.given(changed({"basic": {"debug": True}})).when(
        domain.decide_update, {"basic": {"debug": False}}, 0
    ).then_error("VERSION_CONFLICT", status=409, details=[{"currentVersion": 1, "expectedVersion": 0}])


def test_update_empty_patch_refused() -> None:
    kit.given().when(domain.decide_update, {}, None).then_error("INVALID_CONFIG")


def test_update_unknown_section() -> None:
    kit.given().when(domain.decide_update, {"nope": {}}, None).then_error(
        "SECTION_NOT_FOUND", status=404, details=[{"path": "nope"}]
    )


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"context": {"maxMessages": 0}}, "context.maxMessages"),
        ({"web": {"port": 70000}}, "web.port"),
        ({"basic": {"debug": "yes"}}, "basic.debug"),
        ({"llm": {"fallback": {"bogus": 1}}}, "llm.fallback"),
    ],
)
def test_update_invalid_value_names_its_path(patch: dict[str, Any], path: str) -> None:
    err = kit.given().when(domain.decide_update, patch, None).then_error("INVALID_CONFIG", status=400)
    assert err.details and err.details[0]["path"] == path, err.details


def test_update_with_a_masked_secret_keeps_the_stored_one() -> None:
    # `bot` is free-form; a secret-named key in it reads back masked and must survive a round trip.
    stored = changed({"bot": {"apiKey": "sk-secret-123456", "name": "neko"}})
    given = kit.given(stored)
    given.when(domain.decide_update, {"bot": {"apiKey": "sk-****3456", "name": "neko"}}, None).then_nothing()
    given.when(domain.decide_update, {"bot": {"apiKey": "sk-****3456", "name": "kitty"}}, None).then(
        changed({"bot": {"name": "kitty"}}, stored.document)
    )


def test_rollback_to_an_earlier_state() -> None:
    first = changed({"basic": {"debug": True}})
    second = changed({"web": {"port": 8080}}, first.document)
    target = kit.fold(first)
    after = (
        kit.given(first, second)
        .when(domain.decide_rollback, target)
        .then(ConfigRolledBack(document=first.document, paths=["web.port"], to_version=1))
    )
    assert after.state.document == first.document
    assert after.state.version == 3


def test_rollback_to_an_identical_document_is_a_no_op() -> None:
    first = changed({"basic": {"debug": True}})
    kit.given(first).when(domain.decide_rollback, kit.fold(first)).then_nothing()


def test_rollback_to_the_initial_defaults() -> None:
    first = changed({"basic": {"debug": True}})
    kit.given(first).when(domain.decide_rollback, kit.fold()).then(
        ConfigRolledBack(document=domain.defaults(), paths=["basic.debug"], to_version=0)
    )


def test_rollback_revalidates_an_old_document() -> None:
    # A document stored under an older schema that today's schema refuses cannot be rolled back to.
    old = ConfigState({**domain.defaults(), "web": {"port": 0, "publicUrl": ""}}, 1)
    kit.given().when(domain.decide_rollback, old).then_error("INVALID_CONFIG")
