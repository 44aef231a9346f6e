"""The decider kit itself must fail when the decider does not do what a test says."""

from __future__ import annotations

import msgspec
import pytest

from schemas.presets import PresetDeleted, PresetUpdated
from services.presets import domain
from services.presets.domain import PresetState
from tests.unit.kit import Kit, check_registered

kit = Kit(domain.evolve, PresetState("alpha"))


class NotRegistered(msgspec.Struct):
    x: int


def test_then_fails_on_other_events() -> None:
    with pytest.raises(AssertionError):
        kit.given().when(lambda state: [PresetDeleted(id="alpha")]).then(PresetDeleted(id="beta"))
    with pytest.raises(AssertionError):
        kit.given().when(lambda state: [PresetDeleted(id="alpha")]).then()


def test_then_fails_when_the_decider_refuses() -> None:
    with pytest.raises(pytest.fail.Exception):
        kit.given().when(domain.decide_delete, None).then(PresetDeleted(id="alpha"))


def test_then_error_fails_on_success_or_another_code() -> None:
    with pytest.raises(pytest.fail.Exception):
        kit.given().when(lambda state: []).then_error("PRESET_NOT_FOUND")
    with pytest.raises(AssertionError):
        kit.given().when(domain.decide_delete, None).then_error("VERSION_CONFLICT")


def test_unregistered_events_are_caught() -> None:
    with pytest.raises(AssertionError, match="declared by no DomainModule"):
        check_registered([NotRegistered(x=1)])
    check_registered([PresetUpdated(changes={})])


def test_given_folds_through_evolve() -> None:
    assert kit.given(PresetUpdated(changes={"a": 1})).state.version == 1
