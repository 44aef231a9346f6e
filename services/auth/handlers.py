"""Command handlers of the auth domain. Password checks run before the write transaction (and in
a thread), so a transaction never waits on argon2."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
import msgspec

from bus.eventstore import (
    Decision,
    EventStore,
    Handler,
    StreamAppend,
    error_reply,
    event_from_struct,
    fold_stream,
    payload_of,
)
from bus.worker import CommandFn
from schemas.auth import (
    ChangePassword,
    ConsumeLoginLink,
    Login,
    LoginFailed,
    LoginSucceeded,
    RevokeToken,
    TokenRevoked,
)
from schemas.envelope import CommandEnvelope, CommandReply
from schemas.errors import DomainError
from services.auth import domain, passwords, queries
from services.auth.domain import UserState, user_stream


async def load_user(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> UserState:
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            return await fold_stream(c, user_stream(username), UserState(username), domain.evolve, domain.EVENTS)
    return await fold_stream(conn, user_stream(username), UserState(username), domain.evolve, domain.EVENTS)


def _append_to_user(events: Sequence[msgspec.Struct], *, result: object = None, check: int | None = None) -> Handler:
    """A handler appending events at the stream's current version. With `check`, the version must
    still be `check` (the state the caller decided on)."""

    async def handler(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        username = str(envelope.payload["username"])
        state = await load_user(conn, username)
        if check is not None and state.version != check:
            raise DomainError("CONFLICT", "the user changed meanwhile, retry")
        stored = [event_from_struct(e) for e in events]
        return Decision([StreamAppend(user_stream(username), state.version, stored)], result=result)

    return handler


class AuthCommands:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def login(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = payload_of(envelope, Login)
            state = await load_user(self.store.pool, cmd.username)
            if state.exists:
                domain.check_lockout(await queries.recent_failures(self.store.pool, cmd.username, cmd.client_ip))
        except DomainError as exc:
            return error_reply(exc)
        ok = await passwords.verify_password_async(state.password_hash, cmd.password)
        if not state.exists:
            return error_reply(DomainError("INVALID_CREDENTIALS", "wrong username or password"))
        event: msgspec.Struct = LoginSucceeded(client_ip=cmd.client_ip) if ok else LoginFailed(client_ip=cmd.client_ip)
        user = {"username": state.username, "scope": state.scope}
        reply = await self.store.execute(envelope, _append_to_user([event], result=user if ok else None))
        if reply.ok and not ok:
            return error_reply(DomainError("INVALID_CREDENTIALS", "wrong username or password"))
        return reply

    async def change_password(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = payload_of(envelope, ChangePassword)
        except DomainError as exc:
            return error_reply(exc)
        state = await load_user(self.store.pool, cmd.username)
        old_ok = await passwords.verify_password_async(state.password_hash, cmd.old_password)
        try:
            events = domain.decide_change_password(state, old_ok, await passwords.hash_password_async(cmd.new_password))
        except DomainError as exc:
            return error_reply(exc)
        return await self.store.execute(envelope, _append_to_user(events, check=state.version))

    async def revoke_token(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = payload_of(envelope, RevokeToken)
        except DomainError as exc:
            return error_reply(exc)
        return await self.store.execute(
            envelope, _append_to_user([TokenRevoked(jti=cmd.jti, expires_at=cmd.expires_at)])
        )

    async def consume_link(self, envelope: CommandEnvelope) -> CommandReply:
        async def handler(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
            cmd = payload_of(env, ConsumeLoginLink)
            stream = domain.link_stream(cmd.jti)
            consumed = await fold_stream(conn, stream, False, domain.evolve_link, domain.EVENTS)
            events = domain.decide_consume_link(consumed, cmd.jti, cmd.username)
            return Decision([StreamAppend(stream, 0, [event_from_struct(e) for e in events])])

        return await self.store.execute(envelope, handler)

    def handlers(self) -> dict[str, CommandFn]:
        return {
            "login": self.login,
            "change_password": self.change_password,
            "revoke_token": self.revoke_token,
            "consume_link": self.consume_link,
        }


async def set_password(
    store: EventStore, username: str, password: str, *, scope: str = "admin", create_only: bool = False
) -> CommandReply:
    """Create the user or reset its password: used by admin bootstrap and `chatbus admin set-password`,
    which run without the bus."""
    password_hash = await passwords.hash_password_async(password)

    async def handler(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        state = await load_user(conn, username)
        if create_only and state.exists:
            raise DomainError("CONFLICT", f"user '{username}' already exists")
        events = domain.decide_set_password(state, password_hash, scope)
        return Decision([StreamAppend(user_stream(username), state.version, [event_from_struct(e) for e in events])])

    envelope = CommandEnvelope(
        command_id=uuid.uuid4(),
        type="auth.set_password",
        payload={"username": username},
    )
    return await store.execute(envelope, handler)


async def ensure_admin(store: EventStore, username: str, password: str | None) -> str | None:
    """Create the admin on first start. Returns the generated password, to print once, if any."""
    if await queries.user_exists(store.pool, username):
        return None
    generated = None if password else passwords.generate_password()
    reply = await set_password(store, username, password or generated or "", create_only=True)
    if not reply.ok:
        if reply.error is not None and reply.error.code == "CONFLICT":
            return None  # another process created it first
        raise RuntimeError(f"could not create the admin: {reply.error}")
    return generated
