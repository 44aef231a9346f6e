"""The group-admin decider on the given/when/then kit: group overrides and single-use login codes."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.group_admin import GroupConfigDeleted, GroupConfigSet, GroupLoginCodeIssued, GroupLoginCodeRedeemed
from services.config.domain import defaults
from services.group_admin import domain
from services.group_admin.domain import CODE_TTL_SECONDS, CodeState, GroupState
from tests.unit.kit import Kit

NOW = 1_700_000_000.0

groups = Kit(domain.evolve, GroupState("g1"))
codes = Kit(domain.evolve_code, CodeState())


def set_(overrides: dict[str, Any], paths: list[str]) -> GroupConfigSet:
    return GroupConfigSet(group_id="g1", overrides=overrides, paths=paths)


# ---- overrides ----


def test_first_update_creates_the_group_config() -> None:
    after = groups.given().when(domain.decide_update, {"model": "m1"}, None).then(set_({"model": "m1"}, ["model"]))
    assert after.state.exists and after.state.version == 1


def test_update_merges_nested_overrides() -> None:
    given = groups.given(set_({"trigger": {"at": False}}, ["trigger"]))
    given.when(domain.decide_update, {"trigger": {"keywords": ["hi"]}}, 1).then(
        set_({"trigger": {"at": False, "keywords": ["hi"]}}, ["trigger.keywords"])
    )


def test_update_without_change_is_a_no_op_once_the_group_exists() -> None:
    groups.given(set_({"model": "m1"}, ["model"])).when(domain.decide_update, {"model": "m1"}, None).then_nothing()


def test_update_version_conflict() -> None:
    groups.given(set_({"model": "m1"}, ["model"])).when(domain.decide_update, {"model": "m2"}, 0).then_error(
        "VERSION_CONFLICT", status=409, details=[{"currentVersion": 1, "expectedVersion": 0}]
    )


def test_update_empty_patch() -> None:
    groups.given().when(domain.decide_update, {}, None).then_error("INVALID_CONFIG")


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"trigger": {"randomRate": 2}}, "trigger.randomRate"),
        ({"usageLimit": {"perUserPerDay": -1}}, "usageLimit.perUserPerDay"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_update_invalid_override_names_its_path(patch: dict[str, Any], path: str) -> None:
    err = groups.given().when(domain.decide_update, patch, None).then_error("INVALID_CONFIG", status=400)
    assert err.details and err.details[0]["path"] == path, err.details


def test_update_unknown_override_refused() -> None:
    groups.given().when(domain.decide_update, {"bogus": 1}, None).then_error("INVALID_CONFIG")


def test_delete() -> None:
    after = (
        groups.given(set_({"model": "m1"}, ["model"]))
        .when(domain.decide_delete)
        .then(GroupConfigDeleted(group_id="g1"))
    )
    assert after.state == GroupState("g1", {}, False, 2)
    after.when(domain.decide_delete).then_error("NOT_FOUND", status=404)
    groups.given().when(domain.decide_delete).then_error("NOT_FOUND")


def test_effective_config_puts_overrides_on_the_global_defaults() -> None:
    config = defaults()
    config["llm"]["defaultModel"] = "global-model"
    config["trigger"]["group"]["prefixes"] = ["!"]
    effective = domain.effective_config("g1", {"trigger": {"at": False}, "model": "own"}, config)
    assert effective["groupId"] == "g1"
    assert effective["model"] == "own"
    assert effective["presetId"] == "default"
    assert effective["trigger"] == {"at": False, "prefixes": ["!"], "keywords": [], "randomRate": 0.0}
    assert domain.effective_config("g1", {}, config)["model"] == "global-model"


# ---- login codes ----


def issued(group_id: str = "g1", at: float = NOW) -> GroupLoginCodeIssued:
    return GroupLoginCodeIssued(group_id=group_id, expires_at=at + CODE_TTL_SECONDS, issued_by="admin")


def test_issue_a_code() -> None:
    after = codes.given().when(domain.decide_issue, "g1", "admin", NOW).then(issued())
    assert after.state == CodeState("g1", NOW + CODE_TTL_SECONDS, False)


def test_issue_on_an_existing_code_stream_is_a_collision() -> None:
    codes.given(issued()).when(domain.decide_issue, "g2", "admin", NOW).then_error("CONFLICT")


def test_redeem_once() -> None:
    after = codes.given(issued()).when(domain.decide_redeem, NOW + 1).then(GroupLoginCodeRedeemed(group_id="g1"))
    assert after.state.redeemed
    after.when(domain.decide_redeem, NOW + 2).then_error("INVALID_CREDENTIALS", status=401)


@pytest.mark.parametrize("offset", [CODE_TTL_SECONDS, CODE_TTL_SECONDS + 1])
def test_an_expired_code_is_refused(offset: float) -> None:
    codes.given(issued()).when(domain.decide_redeem, NOW + offset).then_error("INVALID_CREDENTIALS")


def test_redeem_just_before_expiry() -> None:
    codes.given(issued()).when(domain.decide_redeem, NOW + CODE_TTL_SECONDS - 0.001).then(
        GroupLoginCodeRedeemed(group_id="g1")
    )


def test_an_unknown_code_is_refused_like_a_used_one() -> None:
    unknown = codes.given().when(domain.decide_redeem, NOW).then_error("INVALID_CREDENTIALS")
    used = (
        codes.given(issued(), GroupLoginCodeRedeemed(group_id="g1"))
        .when(domain.decide_redeem, NOW)
        .then_error("INVALID_CREDENTIALS")
    )
    assert unknown.message == used.message  # a guesser learns nothing


def test_codes_and_their_streams() -> None:
    code = domain.new_code()
    assert len(code) == domain.CODE_LENGTH and set(code) <= set(domain.CODE_ALPHABET)
    key = b"k" * 32
    stream = domain.code_stream(code, key)
    assert code not in stream and code.lower() not in stream
    assert domain.code_stream(code.lower(), key) == stream  # a code typed in lower case is the same code
    assert domain.code_stream(code, b"another key" * 3) != stream  # the key, not the code alone, names it
    assert domain.group_stream("g1") == "groupconfig-g1"
