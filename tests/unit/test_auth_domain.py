"""Pure tests of auth: the user/login-link decider, JWT tokens and argon2 passwords."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import msgspec
import pytest

from schemas.auth import LoginLinkConsumed, PasswordChanged, UserCreated
from schemas.errors import DomainError
from services.auth import domain, passwords, tokens
from services.auth.domain import UserState
from tests.unit.kit import Kit

SECRET = "test-secret-" + "0123456789abcdef" * 4


class _Unrelated(msgspec.Struct):
    """An event of no interest to the evolve function under test."""


def ev(event_type: str, data: dict[str, Any]) -> Any:
    """A typed event from its stored form, as the store decodes it."""
    if event_type in domain.EVENTS:
        return domain.EVENTS.decode(event_type, 1, data)
    return _Unrelated()


def fold(username: str, events: list[msgspec.Struct]) -> UserState:
    return Kit(domain.evolve, UserState(username)).fold(*events)


def error_of(call: Any, *args: Any, **kwargs: Any) -> DomainError:
    with pytest.raises(DomainError) as info:
        call(*args, **kwargs)
    return info.value


# ---- evolve ----


def test_evolve_user_created() -> None:
    state = domain.evolve(UserState("admin"), ev("UserCreated", {"username": "admin", "password_hash": "h1"}))
    assert state == UserState("admin", exists=True, password_hash="h1", scope="admin", version=1)


def test_evolve_user_created_with_scope() -> None:
    state = fold("bob", [UserCreated(username="bob", password_hash="h", scope="readonly")])
    assert state.scope == "readonly"


def test_evolve_password_changed_and_other_events() -> None:
    state = fold("admin", [UserCreated(username="admin", password_hash="h1"), PasswordChanged(password_hash="h2")])
    assert (state.password_hash, state.version) == ("h2", 2)
    state = domain.evolve(state, ev("LoginSucceeded", {"client_ip": "127.0.0.1"}))
    assert (state.exists, state.password_hash, state.version) == (True, "h2", 3)


def test_evolve_link() -> None:
    assert domain.evolve_link(False, ev("LoginLinkConsumed", {"jti": "j", "username": "admin"})) is True
    assert domain.evolve_link(True, ev("Whatever", {})) is True
    assert domain.evolve_link(False, ev("Whatever", {})) is False


def test_stream_ids() -> None:
    assert domain.user_stream("admin") == "user-admin"
    assert domain.link_stream("abc") == "loginlink-abc"


# ---- deciders ----


def test_set_password_creates_missing_user() -> None:
    events = domain.decide_set_password(UserState("admin"), "h1", "admin")
    assert events == [UserCreated(username="admin", password_hash="h1", scope="admin")]


def test_set_password_changes_existing_user() -> None:
    state = fold("admin", [UserCreated(username="admin", password_hash="h1")])
    assert domain.decide_set_password(state, "h2") == [PasswordChanged(password_hash="h2")]


def test_change_password_ok() -> None:
    state = fold("admin", [UserCreated(username="admin", password_hash="h1")])
    assert domain.decide_change_password(state, True, "h2") == [PasswordChanged(password_hash="h2")]


def test_change_password_wrong_old() -> None:
    state = fold("admin", [UserCreated(username="admin", password_hash="h1")])
    err = error_of(domain.decide_change_password, state, False, "h2")
    assert (err.code, err.status) == ("INVALID_CREDENTIALS", 401)


def test_change_password_unknown_user() -> None:
    err = error_of(domain.decide_change_password, UserState("ghost"), True, "h2")
    assert (err.code, err.status) == ("NOT_FOUND", 404)


@pytest.mark.parametrize("failures", [0, 1, 4])
def test_lockout_below_threshold(failures: int) -> None:
    domain.check_lockout(failures)


@pytest.mark.parametrize("failures", [5, 6, 100])
def test_lockout_at_threshold(failures: int) -> None:
    err = error_of(domain.check_lockout, failures)
    assert (err.code, err.status) == ("RATE_LIMITED", 429)
    assert err.details == [{"retryAfter": domain.LOCKOUT_WINDOW_SECONDS}]


def test_consume_link_once_then_refused() -> None:
    links = Kit(domain.evolve_link, False)
    after = (
        links.given()
        .when(domain.decide_consume_link, "j1", "admin")
        .then(LoginLinkConsumed(jti="j1", username="admin"))
    )
    assert after.state is True
    after.when(domain.decide_consume_link, "j1", "admin").then_error("INVALID_TOKEN", status=401)


def test_user_scenario_on_the_kit() -> None:
    users = Kit(domain.evolve, UserState("bob"))
    after = (
        users.given()
        .when(domain.decide_set_password, "h1", "readonly")
        .then(UserCreated(username="bob", password_hash="h1", scope="readonly"))
        .when(domain.decide_change_password, True, "h2")
        .then(PasswordChanged(password_hash="h2"))
    )
    assert (after.state.password_hash, after.state.scope, after.state.version) == ("h2", "readonly", 2)
    after.when(domain.decide_set_password, "h3").then(PasswordChanged(password_hash="h3"))
    after.when(domain.decide_change_password, False, "h3").then_error("INVALID_CREDENTIALS", status=401)


# ---- tokens ----


def _b64(obj: dict[str, Any]) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _valid_payload(**override: Any) -> dict[str, Any]:
    now = int(time.time())
    payload = {
        "sub": "admin",
        "jti": "j1",
        "iat": now,
        "exp": now + 600,
        "iss": tokens.ISSUER,
        "aud": tokens.API_AUDIENCE,
        "scope": "admin",
    }
    payload.update(override)
    return payload


def test_issue_decode_round_trip() -> None:
    token, claims = tokens.issue(SECRET, "admin", "admin", ttl=600)
    decoded = tokens.decode(SECRET, token)
    assert decoded == claims
    assert decoded.sub == "admin"
    assert decoded.exp - decoded.iat == 600
    assert not decoded.permanent
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_issue_unique_jti() -> None:
    assert tokens.issue(SECRET, "a", "admin")[1].jti != tokens.issue(SECRET, "a", "admin")[1].jti


def test_login_link_round_trip_permanent() -> None:
    token, claims = tokens.issue(
        SECRET, "admin", "admin", ttl=tokens.PERMANENT_LINK_TTL, audience=tokens.LINK_AUDIENCE, permanent=True
    )
    decoded = tokens.decode(SECRET, token, audience=tokens.LINK_AUDIENCE)
    assert decoded == claims
    assert decoded.permanent


def test_expired_token() -> None:
    token, _ = tokens.issue(SECRET, "admin", "admin", ttl=-10)
    err = error_of(tokens.decode, SECRET, token)
    assert (err.code, err.status) == ("TOKEN_EXPIRED", 401)


def test_wrong_secret() -> None:
    token, _ = tokens.issue(SECRET, "admin", "admin")
    assert error_of(tokens.decode, "another-secret-" + "fedcba9876543210" * 4, token).code == "INVALID_TOKEN"


def test_wrong_audience() -> None:
    link, _ = tokens.issue(SECRET, "admin", "admin", audience=tokens.LINK_AUDIENCE)
    assert error_of(tokens.decode, SECRET, link).code == "INVALID_TOKEN"
    api, _ = tokens.issue(SECRET, "admin", "admin")
    assert error_of(tokens.decode, SECRET, api, audience=tokens.LINK_AUDIENCE).code == "INVALID_TOKEN"


def test_tampered_payload() -> None:
    token, _ = tokens.issue(SECRET, "viewer", "readonly")
    header, _, signature = token.split(".")
    forged = f"{header}.{_b64(_valid_payload(sub='viewer', scope='admin'))}.{signature}"
    assert error_of(tokens.decode, SECRET, forged).code == "INVALID_TOKEN"


def test_alg_none_refused() -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_valid_payload())}."
    err = error_of(tokens.decode, SECRET, token)
    assert (err.code, err.status) == ("INVALID_TOKEN", 401)


def test_hs512_with_right_secret_refused() -> None:
    token = jwt.encode(_valid_payload(), SECRET, algorithm="HS512")
    # The same claims signed HS256 are accepted, so only the algorithm is refused.
    assert tokens.decode(SECRET, jwt.encode(_valid_payload(), SECRET, algorithm="HS256")).sub == "admin"
    assert error_of(tokens.decode, SECRET, token).code == "INVALID_TOKEN"


def test_wrong_issuer_refused() -> None:
    token = jwt.encode(_valid_payload(iss="someone-else"), SECRET, algorithm="HS256")
    assert error_of(tokens.decode, SECRET, token).code == "INVALID_TOKEN"


@pytest.mark.parametrize("claim", ["sub", "jti", "iat", "exp", "iss", "aud", "scope"])
def test_missing_required_claim_refused(claim: str) -> None:
    payload = _valid_payload()
    del payload[claim]
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    assert error_of(tokens.decode, SECRET, token).code == "INVALID_TOKEN"


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "a.b"])
def test_garbage_refused(garbage: str) -> None:
    assert error_of(tokens.decode, SECRET, garbage).code == "INVALID_TOKEN"


# ---- passwords ----


def test_hash_and_verify() -> None:
    hashed = passwords.hash_password("correct horse")
    assert hashed.startswith("$argon2")
    assert hashed != passwords.hash_password("correct horse")  # salted
    assert passwords.verify_password(hashed, "correct horse")


def test_wrong_password() -> None:
    hashed = passwords.hash_password("correct horse")
    assert passwords.verify_password(hashed, "wrong horse") is False


def test_verify_against_none() -> None:
    assert passwords.verify_password(None, "anything") is False
    assert passwords.verify_password(None, "") is False


def test_verify_against_malformed_hash() -> None:
    assert passwords.verify_password("not-a-hash", "x") is False


async def test_async_helpers_round_trip() -> None:
    hashed = await passwords.hash_password_async("s3cret-pass")
    assert await passwords.verify_password_async(hashed, "s3cret-pass")
    assert not await passwords.verify_password_async(hashed, "nope")


def test_generate_password() -> None:
    generated = passwords.generate_password()
    assert len(generated) >= 16
    assert generated != passwords.generate_password()


def test_token_verifier_caches_but_rechecks_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s" * 40
    verifier = tokens.TokenVerifier(secret, max_entries=2)
    token, claims = tokens.issue(secret, "admin", "admin", ttl=60)
    assert verifier.decode(token) == claims
    calls = 0
    real_decode = tokens.decode

    def counting_decode(*args: Any, **kwargs: Any) -> tokens.TokenClaims:
        nonlocal calls
        calls += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(tokens, "decode", counting_decode)
    assert verifier.decode(token) == claims and calls == 0  # served from the cache
    monkeypatch.setattr(tokens.time, "time", lambda: claims.exp + 1)
    with pytest.raises(DomainError) as err:
        verifier.decode(token)
    assert err.value.code == "TOKEN_EXPIRED"
    with pytest.raises(DomainError) as bad:
        verifier.decode(token[:-2] + "xx")
    assert bad.value.code == "INVALID_TOKEN"
