"""Which chat turns look up their stored steps before running (services/chat/engine.py)."""

from __future__ import annotations

import uuid

from schemas.chat import SendChat
from schemas.envelope import Actor, CommandEnvelope
from services.chat.engine import may_be_retried, must_look_up
from services.pipeline.worker import command_id as pipeline_command_id


def envelope(command_id: uuid.UUID, request_hash: str | None = None) -> CommandEnvelope:
    return CommandEnvelope(command_id=command_id, type="chat.send", actor=Actor("admin"), request_hash=request_hash)


def test_a_random_id_without_a_key_is_never_a_retry() -> None:
    assert not may_be_retried(envelope(uuid.uuid4()))


def test_an_idempotency_key_or_a_derived_id_may_be_a_retry() -> None:
    assert may_be_retried(envelope(uuid.uuid4(), request_hash="abc"))
    assert may_be_retried(envelope(uuid.uuid5(uuid.NAMESPACE_URL, "key")))
    assert may_be_retried(envelope(pipeline_command_id("onebot:1:2", "chat.send")))


def test_only_a_first_try_of_a_retriable_turn_skips_the_look_up() -> None:
    derived = envelope(pipeline_command_id("onebot:1:2", "chat.send"))
    first = SendChat(message="hi", conversation_id="user:1", first_try=True)
    again = SendChat(message="hi", conversation_id="user:1")
    assert not must_look_up(derived, first)
    assert must_look_up(derived, again)  # a redelivery finds what a crashed worker committed
    assert not must_look_up(envelope(uuid.uuid4()), again)
