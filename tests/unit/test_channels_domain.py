"""The channels decider on the given/when/then kit: create/update/delete and the health state machine
(cooldown on a 429, `error` after three failures, out of `error` only through a successful test)."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.channels import ChannelCreated, ChannelDeleted, ChannelStatusChanged, ChannelUpdated
from services.channels import domain
from services.channels.domain import ERROR_AFTER_FAILURES, ChannelState
from tests.unit.kit import Given, Kit

NOW = 1_700_000_000.0
FIELDS = {"name": "Main", "baseUrl": "https://api.example.com/v1", "apiKey": "sk-secret-123456"}

kit = Kit(domain.evolve, ChannelState("c1"))


def normalised(**extra: Any) -> dict[str, Any]:
    [event] = domain.decide_create(ChannelState("c1"), {**FIELDS, **extra})
    assert isinstance(event, ChannelCreated)
    return event.fields


def created(**extra: Any) -> ChannelCreated:
    return ChannelCreated(id="c1", fields=normalised(**extra))


def status(name: str, **kw: Any) -> ChannelStatusChanged:
    return ChannelStatusChanged(status=name, **kw)  # type: ignore[arg-type]


def health(
    given: Given[ChannelState],
    ok: bool,
    *,
    tested: bool = False,
    retry_after: float | None = None,
    error: str | None = None,
) -> Any:
    return given.when(domain.decide_health, ok=ok, error=error, retry_after=retry_after, tested=tested, now=NOW)


# ---- create / update / delete ----


def test_create_normalises_fields() -> None:
    fields = normalised()
    assert fields["adapterType"] == "openai" and fields["priority"] == 100 and fields["enabled"] is True
    kit.given().when(domain.decide_create, FIELDS).then(ChannelCreated(id="c1", fields=fields))


def test_create_existing_is_conflict() -> None:
    kit.given(created()).when(domain.decide_create, FIELDS).then_error("CONFLICT", status=409)


def test_create_after_delete_is_allowed() -> None:
    kit.given(created(), ChannelDeleted(id="c1")).when(domain.decide_create, FIELDS).then(created())


@pytest.mark.parametrize("bad_id", ["", "a" * 65, "has space", "semi;colon"])
def test_create_bad_id(bad_id: str) -> None:
    Kit(domain.evolve, ChannelState(bad_id)).given().when(domain.decide_create, FIELDS).then_error("VALIDATION_ERROR")


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "x"},  # no base URL
        {**FIELDS, "baseUrl": "ftp://example.com"},
        {**FIELDS, "baseUrl": "https://exa mple.com"},
        {**FIELDS, "proxy": "http://"},
        {**FIELDS, "weight": 0},
        {**FIELDS, "unknownField": 1},
    ],
)
def test_create_invalid_fields(fields: dict[str, Any]) -> None:
    kit.given().when(domain.decide_create, fields).then_error("VALIDATION_ERROR", status=400)


def test_update_missing_channel() -> None:
    kit.given().when(domain.decide_update, {"name": "x"}, None).then_error("CHANNEL_NOT_FOUND", status=404)


def test_update_version_conflict() -> None:
    kit.given(created()).when(domain.decide_update, {"name": "x"}, 3).then_error(
        "VERSION_CONFLICT", status=409, details=[{"currentVersion": 1, "expectedVersion": 3}]
    )


def test_update_keeps_only_effective_changes() -> None:
    state = (
        kit.given(created())
        .when(domain.decide_update, {"name": "Main", "priority": 5}, 1)
        .then(ChannelUpdated(changes={"priority": 5}))
    )
    assert state.state.fields["priority"] == 5 and state.state.version == 2
    state.when(domain.decide_update, {"priority": 5}, None).then_nothing()


def test_update_masked_key_sent_back_means_unchanged() -> None:
    # A client that read `sk-****3456` and sends it back has not changed the key.
    kit.given(created()).when(domain.decide_update, {"apiKey": "sk-****3456"}, None).then_nothing()
    kit.given(created()).when(domain.decide_update, {"apiKey": "sk-new-key-999"}, None).then(
        ChannelUpdated(changes={"apiKey": "sk-new-key-999"})
    )


def test_update_invalid_change() -> None:
    kit.given(created()).when(domain.decide_update, {"weight": 1000}, None).then_error("VALIDATION_ERROR")


def test_disable_and_enable_move_the_status() -> None:
    disabled = (
        kit.given(created())
        .when(domain.decide_update, {"enabled": False}, None)
        .then(ChannelUpdated(changes={"enabled": False}), status("disabled"))
    )
    assert disabled.state.status == "disabled"
    # Re-enabling a channel that was in `error` starts it afresh.
    kit.given(created(), status("error", consecutive_failures=3), ChannelUpdated(changes={"enabled": False})).when(
        domain.decide_update, {"enabled": True}, None
    ).then(ChannelUpdated(changes={"enabled": True}), status("idle"))


def test_delete() -> None:
    kit.given(created()).when(domain.decide_delete).then(ChannelDeleted(id="c1"))
    kit.given().when(domain.decide_delete).then_error("CHANNEL_NOT_FOUND")
    kit.given(created(), ChannelDeleted(id="c1")).when(domain.decide_delete).then_error("CHANNEL_NOT_FOUND")


# ---- health ----


def test_health_of_a_missing_channel() -> None:
    health(kit.given(), True).then_error("CHANNEL_NOT_FOUND")


def test_first_success_makes_an_idle_channel_active() -> None:
    after = health(kit.given(created()), True).then(status("active"))
    assert after.state.status == "active"
    # Already active without failures: a plain success records nothing.
    health(after, True).then_nothing()


def test_successful_test_is_recorded_with_its_time() -> None:
    health(kit.given(created(), status("active")), True, tested=True).then(status("active", tested_at=NOW))


def test_error_after_three_failures() -> None:
    given = kit.given(created())
    for failures in range(1, ERROR_AFTER_FAILURES):
        given = health(given, False, error="boom").then(
            status("active", last_error="boom", consecutive_failures=failures)
        )
        assert given.state.status == "active"
    given = health(given, False, error="boom").then(
        status("error", last_error="boom", consecutive_failures=ERROR_AFTER_FAILURES)
    )
    assert given.state.status == "error"


def test_success_resets_the_failure_count() -> None:
    given = kit.given(created(), status("active", consecutive_failures=2, last_error="x"))
    after = health(given, True).then(status("active"))
    assert after.state.consecutive_failures == 0
    # So two more failures do not reach `error`.
    after = health(health(after, False).then(status("active", consecutive_failures=1)), False).then(
        status("active", consecutive_failures=2)
    )
    assert after.state.status == "active"


def test_a_call_success_does_not_take_a_channel_out_of_error() -> None:
    health(kit.given(created(), status("error", consecutive_failures=3)), True).then_nothing()


def test_a_successful_test_takes_a_channel_out_of_error() -> None:
    after = health(kit.given(created(), status("error", consecutive_failures=3)), True, tested=True).then(
        status("active", tested_at=NOW)
    )
    assert (after.state.status, after.state.consecutive_failures) == ("active", 0)


def test_a_failed_test_marks_error_at_once() -> None:
    health(kit.given(created(), status("active")), False, tested=True, error="401").then(
        status("error", last_error="401", consecutive_failures=1, tested_at=NOW)
    )


def test_rate_limit_puts_the_channel_in_cooldown() -> None:
    after = health(kit.given(created(), status("active")), False, retry_after=20, error="429").then(
        status("cooldown", last_error="429", cooldown_until=NOW + 20, consecutive_failures=1)
    )
    assert after.state.cooldown_until == NOW + 20


@pytest.mark.parametrize("retry_after", [0.0, 0.2])
def test_cooldown_lasts_at_least_a_second(retry_after: float) -> None:
    health(kit.given(created()), False, retry_after=retry_after).then(
        status("cooldown", cooldown_until=NOW + 1, consecutive_failures=1)
    )


def test_success_ends_a_cooldown() -> None:
    given = kit.given(created(), status("cooldown", cooldown_until=NOW - 1, consecutive_failures=1))
    after = health(given, True).then(status("active"))
    assert after.state.cooldown_until is None


def test_a_rate_limited_call_does_not_take_a_channel_out_of_error() -> None:
    # A 429 from a call still in flight when the channel went to `error` must not turn it into a cooldown,
    # which would make it selectable again when the cooldown ends, without a successful test.
    given = kit.given(created(), status("error", consecutive_failures=3))
    after = health(given, False, retry_after=5, error="429").then(
        status("error", last_error="429", consecutive_failures=4)
    )
    assert after.state.status == "error"


def test_a_plain_failure_after_a_cooldown_is_active_not_cooldown() -> None:
    # The cooldown has passed (the channel was selected again); a failure without Retry-After must not
    # leave it labelled `cooldown` with no end.
    given = kit.given(created(), status("cooldown", cooldown_until=NOW - 1, consecutive_failures=1))
    health(given, False, error="500").then(status("active", last_error="500", consecutive_failures=2))


@pytest.mark.parametrize("ok", [True, False])
def test_a_disabled_channel_records_no_health(ok: bool) -> None:
    given = kit.given(created(enabled=False))
    health(given, ok, tested=True, retry_after=5).then_nothing()


def test_evolve_keeps_health_fields() -> None:
    state = kit.fold(created(), status("cooldown", cooldown_until=NOW + 5, consecutive_failures=2, last_error="e"))
    assert (state.status, state.cooldown_until, state.consecutive_failures, state.version) == (
        "cooldown",
        NOW + 5,
        2,
        2,
    )
    state = kit.apply(state, [ChannelDeleted(id="c1")])
    assert state == ChannelState("c1", version=3)
