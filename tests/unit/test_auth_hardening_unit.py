"""Pure parts of issue 7's auth hardening: token claims, the password epoch, lock keys, code stream ids."""

from __future__ import annotations

import hashlib
import time

import jwt
import pytest

from schemas.auth import PasswordChanged, UserCreated
from schemas.errors import DomainError
from services.auth import domain, tokens
from services.auth.domain import UserState
from services.group_admin import domain as group_domain

SECRET = "unit-secret-" + "0123456789abcdef" * 4


def test_claims_carry_epoch_and_session_start() -> None:
    token, claims = tokens.issue(SECRET, "admin", "admin", pwv=3, auth_time=1000, expires_at=int(time.time()) + 60)
    decoded = tokens.decode(SECRET, token)
    assert (decoded.pwv, decoded.auth_time, decoded.jti) == (3, 1000, claims.jti)


def test_old_tokens_default_to_epoch_zero_and_their_issue_time() -> None:
    now = int(time.time())
    payload = {"sub": "a", "jti": "j", "iat": now, "exp": now + 60, "iss": "chatbus", "aud": tokens.API_AUDIENCE}
    decoded = tokens.decode(SECRET, jwt.encode({**payload, "scope": "admin"}, SECRET, algorithm="HS256"))
    assert (decoded.pwv, decoded.auth_time) == (0, now)


@pytest.mark.parametrize("value", ["1", 1.5, True, None])
def test_non_integer_epoch_claims_are_refused(value: object) -> None:
    now = int(time.time())
    payload = {"sub": "a", "jti": "j", "iat": now, "exp": now + 60, "iss": "chatbus", "aud": tokens.API_AUDIENCE}
    token = jwt.encode({**payload, "scope": "admin", "pwv": value}, SECRET, algorithm="HS256")
    with pytest.raises(DomainError) as info:
        tokens.decode(SECRET, token)
    assert info.value.code == "INVALID_TOKEN"


def test_password_change_bumps_the_epoch() -> None:
    state = UserState("admin")
    for event in (UserCreated(username="admin", password_hash="h1"), PasswordChanged(password_hash="h2")):
        state = domain.evolve(state, event)
    assert state.password_epoch == 1
    link = domain.decide_create_link(state, True, 100.0, 50)
    assert link.password_epoch == 1 and link.expires_at == 150.0 and link.permanent


def test_links_need_a_user() -> None:
    with pytest.raises(DomainError) as info:
        domain.decide_create_link(UserState("ghost"), False, 0.0, 60)
    assert info.value.code == "NOT_FOUND"


def test_pair_lock_keys_are_stable_and_distinct() -> None:
    key = domain.login_pair_lock("admin", "10.0.0.1")
    assert key == domain.login_pair_lock("admin", "10.0.0.1")
    assert key != domain.login_pair_lock("admin", "10.0.0.2")
    assert key != domain.login_pair_lock("admin10.0.0.1", "")
    assert -(2**63) <= key < 2**63


def test_code_stream_is_keyed() -> None:
    a = group_domain.code_stream("ABC234", b"key-a")
    assert a == group_domain.code_stream("abc234", b"key-a")
    assert a != group_domain.code_stream("ABC234", b"key-b")
    assert a != "groupcode-" + hashlib.sha256(b"ABC234").hexdigest()[:40]
