"""Platforms: the deciders (kit), OneBot parsing, and the token check."""

from __future__ import annotations

import pytest

from schemas.platforms import PlatformCreated, PlatformDeleted, PlatformUpdated
from services.platforms import domain, onebot
from services.platforms.domain import PlatformState
from services.platforms.onebot import OneBotError
from tests.unit.kit import Kit

kit = Kit(domain.evolve, PlatformState("qq1"))
FIELDS = {
    "type": "onebot11",
    "enabled": True,
    "name": "QQ",
    "display_name": "QQ",
    "config": {"accessToken": "tok", "selfId": "42"},
}


def test_create_accepts_nekobot_aliases() -> None:
    body = {"type": "aiocqhttp", "displayName": "QQ", "enable": True, "config": {"access_token": "tok", "self_id": 42}}
    kit.given().when(domain.decide_create, body, {}).then(PlatformCreated(id="qq1", fields=FIELDS))


def test_create_refuses_duplicates_bad_types_and_a_taken_bot() -> None:
    kit.given(PlatformCreated(id="qq1", fields=FIELDS)).when(domain.decide_create, {}, {}).then_error("CONFLICT")
    kit.given().when(domain.decide_create, {"type": "telegram"}, {}).then_error("VALIDATION_ERROR")
    kit.given().when(domain.decide_create, {"config": {"selfId": "abc"}}, {}).then_error("VALIDATION_ERROR")
    kit.given().when(domain.decide_create, {"config": {"nope": 1}}, {}).then_error("VALIDATION_ERROR")
    kit.given().when(domain.decide_create, {"self_id": "42"}, {"qq0": "42"}).then_error("CONFLICT")


def test_update_keeps_a_masked_token_and_skips_no_ops() -> None:
    given = kit.given(PlatformCreated(id="qq1", fields=FIELDS))
    given.when(domain.decide_update, {"config": {"accessToken": "****"}}, None, {}).then_nothing()
    given.when(domain.decide_update, {"enable": True}, None, {}).then_nothing()
    after = given.when(domain.decide_update, {"enable": False}, 1, {}).then(
        PlatformUpdated(id="qq1", changes={"enabled": False})
    )
    assert after.state.fields["config"]["accessToken"] == "tok"
    given.when(domain.decide_update, {"enable": False}, 0, {}).then_error("VERSION_CONFLICT")
    kit.given().when(domain.decide_update, {}, None, {}).then_error("PLATFORM_NOT_FOUND")


def test_delete() -> None:
    kit.given(PlatformCreated(id="qq1", fields=FIELDS)).when(domain.decide_delete).then(PlatformDeleted(id="qq1"))
    kit.given().when(domain.decide_delete).then_error("PLATFORM_NOT_FOUND")


def test_pick_platform() -> None:
    own = ("own", {"type": "onebot11", "enabled": True, "config": {"selfId": "42", "accessToken": "a"}})
    anyone = ("any", {"type": "onebot11", "enabled": True, "config": {"selfId": "", "accessToken": "b"}})
    open_any = ("open", {"type": "onebot11", "enabled": True, "config": {"selfId": "", "accessToken": ""}})
    off = ("off", {"type": "onebot11", "enabled": False, "config": {"selfId": "42", "accessToken": "c"}})
    assert domain.pick_platform([own, anyone], "42", "a") == "own"
    assert domain.pick_platform([own, anyone], "42", "b") == "any"
    assert domain.pick_platform([own, anyone], "42", "x") is None
    assert domain.pick_platform([open_any], "42", "") is None  # no token and no self id: never open
    assert domain.pick_platform([off], "42", "c") is None
    # Which platform a refusal puts in `error`: the enabled one naming the bot, never a disabled one.
    assert domain.refused_platform([own, anyone], "42") == "own"
    assert domain.refused_platform([anyone, off], "42") is None


def test_cq_codes_and_arrays_parse_alike() -> None:
    cq = "hi &#91;x&#93; [CQ:at,qq=42] there [CQ:reply,id=-7][CQ:face,id=1]&amp;"
    segments = onebot.parse_cq(cq)
    assert segments[0] == {"type": "text", "data": {"text": "hi [x] "}}
    assert segments[1] == {"type": "at", "data": {"qq": "42"}}
    frame = {
        "post_type": "message",
        "message_type": "group",
        "message_id": -5,
        "user_id": 7,
        "group_id": "9",
        "message": cq,
        "sender": {"role": "admin"},
    }
    msg = onebot.inbound(frame, "p", "42")
    assert msg is not None and msg.at_me and msg.reply_to == "-7" and msg.text == "hi [x]  there &"
    assert msg.message_id == "-5" and msg.group_id == "9" and msg.sender.role == "admin"
    assert msg.dedup_id == "onebot:42:-5"


@pytest.mark.parametrize(
    "frame",
    [
        {"post_type": "message_sent", "message_type": "private", "message_id": 1, "user_id": 42, "message": "x"},
        {"post_type": "message", "message_type": "private", "message_id": 1, "user_id": 42, "message": "x"},
        {"post_type": "message", "message_type": "group", "message_id": 1, "user_id": 7, "message": "x"},
        {"post_type": "message", "message_type": "private", "user_id": 7, "message": "x"},
        {"post_type": "message", "message_type": "private", "message_id": True, "user_id": 7},
        {"post_type": "notice", "notice_type": "group_increase"},
        {"post_type": "message", "message_type": "private", "message_id": 1, "user_id": 7, "message": 5},
    ],
)
def test_frames_that_are_no_input(frame: dict[str, object]) -> None:
    msg = onebot.inbound(frame, "p", "42")
    assert msg is None or msg.text == ""


def test_call_results_map_retcodes() -> None:
    assert onebot.call_result({"status": "ok", "retcode": 0, "data": {"message_id": 1}}) == {"message_id": 1}
    for retcode, code in ((1404, "NOT_FOUND"), (1400, "INVALID_ARGS"), (1200, "EXECUTION_ERROR")):
        with pytest.raises(OneBotError) as failed:
            onebot.call_result({"status": "failed", "retcode": retcode, "wording": "no"})
        assert failed.value.code == code and failed.value.retcode == retcode
    assert (
        onebot.heartbeat_interval({"post_type": "meta_event", "meta_event_type": "heartbeat", "interval": 5000}) == 5000
    )
    assert onebot.heartbeat_interval({"post_type": "meta_event", "meta_event_type": "lifecycle"}) is None
