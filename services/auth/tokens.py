"""JWT access tokens and login-link tokens (API.md §2, §3). HS256 only: `alg: none` and every other
algorithm are refused by construction."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass

# PyJWT loads cryptography's X.509 and every asymmetric key type when cryptography is installed (it is:
# bus.crypto seals secrets with AES-GCM), ~1.5 MiB of RSS in each edge and worker for algorithms
# chatbus refuses. Refusing cryptography.x509 while jwt loads leaves it the HMAC algorithms only
# (its `has_crypto` is False); the entry is removed again, so other code may still import x509.
if "jwt" not in sys.modules and "cryptography.x509" not in sys.modules:
    sys.modules["cryptography.x509"] = None  # type: ignore[assignment]
    try:
        import jwt
    finally:
        del sys.modules["cryptography.x509"]
import jwt  # the block above has loaded it; this binds the name on every path

from schemas.errors import DomainError

ISSUER = "chatbus"
API_AUDIENCE = "chatbus-api"
LINK_AUDIENCE = "chatbus-login-link"
DEFAULT_TTL = 24 * 3600
LINK_TTL = 5 * 60
PERMANENT_LINK_TTL = 365 * 24 * 3600


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    jti: str
    iat: int
    exp: int
    scope: str
    permanent: bool = False
    # The user's password epoch when the token was issued: a password change makes older tokens invalid.
    pwv: int = 0
    # When the session began (the password or link login); refreshes carry it, for the absolute lifetime.
    auth_time: int = 0


def issue(
    secret: str,
    sub: str,
    scope: str,
    *,
    ttl: int = DEFAULT_TTL,
    audience: str = API_AUDIENCE,
    permanent: bool = False,
    pwv: int = 0,
    auth_time: int | None = None,
    jti: str | None = None,
    expires_at: int | None = None,
) -> tuple[str, TokenClaims]:
    now = int(time.time())
    claims = TokenClaims(
        sub=sub,
        jti=jti or uuid.uuid4().hex,
        iat=now,
        exp=expires_at if expires_at is not None else now + ttl,
        scope=scope,
        permanent=permanent,
        pwv=pwv,
        auth_time=auth_time if auth_time is not None else now,
    )
    payload = {
        "sub": sub,
        "jti": claims.jti,
        "iat": now,
        "exp": claims.exp,
        "iss": ISSUER,
        "aud": audience,
        "scope": scope,
        "pwv": pwv,
        "auth_time": claims.auth_time,
    }
    if permanent:
        payload["perm"] = True
    return jwt.encode(payload, secret, algorithm="HS256"), claims


def _int_claim(payload: dict[str, object], name: str, default: int) -> int:
    value = payload.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DomainError("INVALID_TOKEN", f"invalid token: claim '{name}' is not an integer")
    return value


def decode(secret: str, token: str, *, audience: str = API_AUDIENCE) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=audience,
            issuer=ISSUER,
            options={"require": ["sub", "jti", "iat", "exp", "iss", "aud", "scope"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise DomainError("TOKEN_EXPIRED", "token expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise DomainError("INVALID_TOKEN", "token is not valid for this audience") from exc
    except jwt.PyJWTError as exc:
        raise DomainError("INVALID_TOKEN", f"invalid token: {exc}") from exc
    iat = int(payload["iat"])
    return TokenClaims(
        sub=str(payload["sub"]),
        jti=str(payload["jti"]),
        iat=iat,
        exp=int(payload["exp"]),
        scope=str(payload["scope"]),
        permanent=bool(payload.get("perm", False)),
        # Tokens from before these claims: epoch 0, and the session began when the token was issued.
        pwv=_int_claim(payload, "pwv", 0),
        auth_time=_int_claim(payload, "auth_time", iat),
    )


class TokenVerifier:
    """`decode` with a bounded cache of verified tokens: a client sends the same token on every
    request, and PyJWT's full verification is a fifth of an edge's CPU on a list route. Expiry is
    re-checked on every hit; revocation is the caller's business, as with `decode`."""

    def __init__(self, secret: str, *, audience: str = API_AUDIENCE, max_entries: int = 10_000) -> None:
        self.secret = secret
        self.audience = audience
        self.max_entries = max_entries
        self._verified: dict[str, TokenClaims] = {}

    def decode(self, token: str) -> TokenClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = decode(self.secret, token, audience=self.audience)
            if len(self._verified) >= self.max_entries:
                self._verified.clear()
            self._verified[token] = claims
        elif claims.exp <= time.time():
            del self._verified[token]
            raise DomainError("TOKEN_EXPIRED", "token expired")
        return claims
