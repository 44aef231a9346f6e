"""Command handlers of the auth domain. Password hashes are computed in a thread; a password change
checks the old one before its write transaction. A login checks the password inside its transaction,
under the user+address lock, which is what makes the lockout hold against concurrent guesses."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

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
    CreateLoginLink,
    Login,
    LoginFailed,
    LoginSucceeded,
    RevokeLoginLink,
    RevokeToken,
    TokenRevoked,
)
from schemas.envelope import CommandEnvelope, CommandReply
from schemas.errors import DomainError
from services.auth import domain, passwords, queries, tokens
from services.auth.domain import UserState, user_stream


async def load_user(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> UserState:
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            return await fold_stream(c, user_stream(username), UserState(username), domain.evolve)
    return await fold_stream(conn, user_stream(username), UserState(username), domain.evolve)


def _append_to_user(events: list[msgspec.Struct], *, result: object = None, check: int | None = None) -> Handler:
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


class _PairLocks:
    """One asyncio lock per user+address, so that concurrent guesses of one pair wait here, in memory,
    instead of each holding a database connection while it waits on the advisory lock."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _login_handler(cmd: Login) -> Handler:
    """Count, check and record one login attempt under the pair's advisory lock: concurrent guesses of
    one user+address (on any worker) are evaluated one after the other, so no more than
    LOCKOUT_FAILURES are ever checked in a window. Unknown names are counted alike (no enumeration).
    The lock is held while argon2 runs: that is the point, and _PairLocks keeps it to one connection."""

    async def handler(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", domain.login_pair_lock(cmd.username, cmd.client_ip))
        domain.check_lockout(await queries.recent_failures(conn, cmd.username, cmd.client_ip))
        state = await load_user(conn, cmd.username)
        ok = await passwords.verify_password_async(state.password_hash, cmd.password)
        event: msgspec.Struct
        if ok:
            event = LoginSucceeded(client_ip=cmd.client_ip)
            result = {"username": state.username, "scope": state.scope, "pwv": state.password_epoch}
        else:
            event = LoginFailed(client_ip=cmd.client_ip, reason="bad_password" if state.exists else "unknown_user")
            result = None
        return Decision([StreamAppend(user_stream(cmd.username), state.version, [event_from_struct(event)])], result)

    return handler


class AuthCommands:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._pairs = _PairLocks()

    async def login(self, envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = payload_of(envelope, Login)
        except DomainError as exc:
            return error_reply(exc)
        async with self._pairs.hold((cmd.username, cmd.client_ip)):
            reply = await self.store.execute(envelope, _login_handler(cmd))
        if reply.ok and reply.result is None:
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
        # The new epoch: the edge tells every edge at once that older tokens are void.
        result = {"username": cmd.username, "pwv": state.password_epoch + 1}
        return await self.store.execute(envelope, _append_to_user(events, result=result, check=state.version))

    async def revoke_token(self, envelope: CommandEnvelope) -> CommandReply:
        """Revoke a jti once. Every revocation appends to the user's stream at its version, so two
        revocations of one token are serialised there: the second sees the first and is refused (a
        token refreshed ten times at once yields one new token)."""

        async def handler(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
            cmd = payload_of(env, RevokeToken)
            # The version first, then the check: a revocation committed before the check is seen by it,
            # and one committed after the version was read makes this append conflict (and retry).
            state = await load_user(conn, cmd.username)
            if await queries.is_revoked(conn, cmd.jti):
                raise DomainError("INVALID_TOKEN", "token has been revoked")
            event = event_from_struct(TokenRevoked(jti=cmd.jti, expires_at=cmd.expires_at))
            return Decision([StreamAppend(user_stream(cmd.username), state.version, [event])])

        return await self.store.execute(envelope, handler)

    async def create_link(self, envelope: CommandEnvelope) -> CommandReply:
        async def handler(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
            cmd = payload_of(env, CreateLoginLink)
            state = await load_user(conn, cmd.username)
            ttl = tokens.PERMANENT_LINK_TTL if cmd.permanent else tokens.LINK_TTL
            event = domain.decide_create_link(state, cmd.permanent, time.time(), ttl)
            result = {"jti": event.jti, "expires_at": int(event.expires_at), "pwv": event.password_epoch}
            return Decision(
                [StreamAppend(user_stream(cmd.username), state.version, [event_from_struct(event)])], result
            )

        return await self.store.execute(envelope, handler)

    async def revoke_link(self, envelope: CommandEnvelope) -> CommandReply:
        async def handler(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
            cmd = payload_of(env, RevokeLoginLink)
            state = await load_user(conn, cmd.username)  # before the check, as in revoke_token
            link = await queries.get_link(conn, cmd.jti)
            if link is None or link.username != cmd.username or link.revoked:
                raise DomainError("NOT_FOUND", f"no login link '{cmd.jti}'")
            event = event_from_struct(TokenRevoked(jti=cmd.jti, expires_at=link.expires_at))
            result = {"jti": cmd.jti, "expires_at": link.expires_at}
            return Decision([StreamAppend(user_stream(cmd.username), state.version, [event])], result)

        return await self.store.execute(envelope, handler)

    async def consume_link(self, envelope: CommandEnvelope) -> CommandReply:
        async def handler(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
            cmd = payload_of(env, ConsumeLoginLink)
            stream = domain.link_stream(cmd.jti)
            consumed = await fold_stream(conn, stream, False, domain.evolve_link)
            events = domain.decide_consume_link(consumed, cmd.jti, cmd.username)
            return Decision([StreamAppend(stream, 0, [event_from_struct(e) for e in events])])

        return await self.store.execute(envelope, handler)

    def handlers(self) -> dict[str, CommandFn]:
        return {
            "login": self.login,
            "change_password": self.change_password,
            "revoke_token": self.revoke_token,
            "create_link": self.create_link,
            "revoke_link": self.revoke_link,
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
