"""JWT access tokens and login-link tokens (API.md §2, §3). HS256 only: `alg: none` and every other
algorithm are refused by construction."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

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


def issue(
    secret: str,
    sub: str,
    scope: str,
    *,
    ttl: int = DEFAULT_TTL,
    audience: str = API_AUDIENCE,
    permanent: bool = False,
) -> tuple[str, TokenClaims]:
    now = int(time.time())
    claims = TokenClaims(sub=sub, jti=uuid.uuid4().hex, iat=now, exp=now + ttl, scope=scope, permanent=permanent)
    payload = {
        "sub": sub,
        "jti": claims.jti,
        "iat": now,
        "exp": claims.exp,
        "iss": ISSUER,
        "aud": audience,
        "scope": scope,
    }
    if permanent:
        payload["perm"] = True
    return jwt.encode(payload, secret, algorithm="HS256"), claims


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
    return TokenClaims(
        sub=str(payload["sub"]),
        jti=str(payload["jti"]),
        iat=int(payload["iat"]),
        exp=int(payload["exp"]),
        scope=str(payload["scope"]),
        permanent=bool(payload.get("perm", False)),
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
