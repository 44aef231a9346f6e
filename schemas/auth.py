"""Auth: API bodies, command payloads and events of the `user-<name>` and `loginlink-<jti>` streams."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Username = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+\Z")]
Password = Annotated[str, Meta(min_length=1, max_length=256)]
NewPassword = Annotated[str, Meta(min_length=8, max_length=256)]


class LoginBody(msgspec.Struct, kw_only=True):
    """POST /api/auth/login: `{password}`, `{username, password}` or `{token}` (login link)."""

    username: Username | None = None
    password: Password | None = None
    token: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None


class NekoLoginBody(msgspec.Struct, kw_only=True):
    username: Username
    password: Password


class PasswordChangeBody(msgspec.Struct, rename="camel"):
    old_password: Password
    new_password: NewPassword


class LoginLinkBody(msgspec.Struct):
    permanent: bool = False


class UserInfo(msgspec.Struct, kw_only=True):
    username: str
    scope: str
    created_at: str | None = None
    last_login_at: str | None = None


# ---- commands (cmd.auth.*) ----


class Login(msgspec.Struct, kw_only=True):
    username: str
    password: str
    client_ip: str = ""


class ChangePassword(msgspec.Struct, kw_only=True):
    username: str
    old_password: str
    new_password: str


class RevokeToken(msgspec.Struct, kw_only=True):
    jti: str
    username: str
    expires_at: float


class ConsumeLoginLink(msgspec.Struct, kw_only=True):
    jti: str
    username: str
    expires_at: float


class CreateLoginLink(msgspec.Struct, kw_only=True):
    username: str
    permanent: bool = False


class RevokeLoginLink(msgspec.Struct, kw_only=True):
    username: str
    jti: str


# ---- events ----


class UserCreated(msgspec.Struct, kw_only=True):
    username: str
    password_hash: str
    scope: str = "admin"


class PasswordChanged(msgspec.Struct, kw_only=True):
    password_hash: str


class LoginSucceeded(msgspec.Struct, kw_only=True):
    client_ip: str


class LoginFailed(msgspec.Struct, kw_only=True):
    client_ip: str
    reason: Literal["bad_password", "locked", "unknown_user"] = "bad_password"


class TokenRevoked(msgspec.Struct, kw_only=True):
    jti: str
    expires_at: float


class LoginLinkConsumed(msgspec.Struct, kw_only=True):
    jti: str
    username: str


class LoginLinkCreated(msgspec.Struct, kw_only=True):
    """A login link was issued (the token is never stored: only what lists and revokes it)."""

    jti: str
    permanent: bool
    expires_at: float
    password_epoch: int = 0


class LoginLinkInfo(msgspec.Struct, kw_only=True, rename="camel"):
    """GET /api/auth/links: a link without its secret."""

    id: str
    created_at: str
    permanent: bool
    expires_at: str


AuthEvent = (
    UserCreated | PasswordChanged | LoginSucceeded | LoginFailed | TokenRevoked | LoginLinkConsumed | LoginLinkCreated
)
