"""Command handlers of the auth domain. Password hashes are computed in a thread; a password change
checks the old one before its write transaction. A login checks the password inside its transaction,
under the user+address lock, which is what makes the lockout hold against concurrent guesses."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence

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
from schemas.auth import ChangePassword, ConsumeLoginLink, CreateLoginLink, Login, RevokeLoginLink, RevokeToken
from schemas.envelope import CommandEnvelope, CommandReply
from schemas.errors import DomainError
from services.auth import domain, passwords, queries, tokens
from services.auth.domain import UserState, user_stream


async def load_user(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> UserState:
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            return await load_user(c, username)
    return await fold_stream(conn, user_stream(username), UserState(username), domain.evolve, domain.EVENTS)


def _to_user(state: UserState, events: Sequence[msgspec.Struct], result: object = None) -> Decision:
    return Decision(
        [StreamAppend(user_stream(state.username), state.version, [event_from_struct(e) for e in events])], result
    )


# ---- transactional handlers ----


async def revoke_token(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    """Revoke a jti once. Every revocation appends to the user's stream at its version, so two
    revocations of one token are serialised there: the second sees the first and is refused (a
    token refreshed ten times at once yields one new token)."""
    cmd = payload_of(envelope, RevokeToken)
    # The version first, then the check: a revocation committed before the check is seen by it,
    # and one committed after the version was read makes this append conflict (and retry).
    state = await load_user(conn, cmd.username)
    return _to_user(state, domain.decide_revoke(await queries.is_revoked(conn, cmd.jti), cmd.jti, cmd.expires_at))


async def create_link(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, CreateLoginLink)
    state = await load_user(conn, cmd.username)
    ttl = tokens.PERMANENT_LINK_TTL if cmd.permanent else tokens.LINK_TTL
    event = domain.decide_create_link(state, cmd.permanent, time.time(), ttl)
    return _to_user(
        state, [event], {"jti": event.jti, "expires_at": int(event.expires_at), "pwv": event.password_epoch}
    )


async def revoke_link(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, RevokeLoginLink)
    state = await load_user(conn, cmd.username)  # before the check, as in revoke_token
    link = await queries.get_link(conn, cmd.jti)
    if link is None or link.username != cmd.username or link.revoked:
        raise DomainError("NOT_FOUND", f"no login link '{cmd.jti}'")
    events = domain.decide_revoke(False, cmd.jti, link.expires_at)
    return _to_user(state, events, {"jti": cmd.jti, "expires_at": link.expires_at})


async def consume_link(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
    cmd = payload_of(envelope, ConsumeLoginLink)
    stream = domain.link_stream(cmd.jti)
    consumed = await fold_stream(conn, stream, False, domain.evolve_link, domain.EVENTS)
    events = domain.decide_consume_link(consumed, cmd.jti, cmd.username)
    return Decision([StreamAppend(stream, 0, [event_from_struct(e) for e in events])])


HANDLERS: dict[str, Handler] = {
    "revoke_token": revoke_token,
    "create_link": create_link,
    "revoke_link": revoke_link,
    "consume_link": consume_link,
}


# ---- login and password change: work around the transaction ----


class PairLocks:
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


def _login_attempt(cmd: Login) -> Handler:
    """Count, check and record one login attempt under the pair's advisory lock: concurrent guesses of
    one user+address (on any worker) are evaluated one after the other, so no more than
    LOCKOUT_FAILURES are ever checked in a window. The lock is held while argon2 runs: that is the
    point, and PairLocks keeps it to one connection per pair."""

    async def handler(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", domain.login_pair_lock(cmd.username, cmd.client_ip))
        failures = await queries.recent_failures(conn, cmd.username, cmd.client_ip)
        domain.check_lockout(failures)  # before argon2: a locked pair costs no hashing
        state = await load_user(conn, cmd.username)
        ok = await passwords.verify_password_async(state.password_hash, cmd.password)
        events = domain.decide_login(state, failures, ok, cmd.client_ip)
        result = {"username": state.username, "scope": state.scope, "pwv": state.password_epoch} if ok else None
        return _to_user(state, events, result)

    return handler


def login_handlers(store: EventStore) -> dict[str, CommandFn]:
    pairs = PairLocks()

    async def login(envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = payload_of(envelope, Login)
        except DomainError as exc:
            return error_reply(exc)
        async with pairs.hold((cmd.username, cmd.client_ip)):
            reply = await store.execute(envelope, _login_attempt(cmd))
        if reply.ok and reply.result is None:
            return error_reply(DomainError("INVALID_CREDENTIALS", "wrong username or password"))
        return reply

    async def change_password(envelope: CommandEnvelope) -> CommandReply:
        try:
            cmd = payload_of(envelope, ChangePassword)
        except DomainError as exc:
            return error_reply(exc)
        state = await load_user(store.pool, cmd.username)
        old_ok = await passwords.verify_password_async(state.password_hash, cmd.old_password)
        try:
            events = domain.decide_change_password(state, old_ok, await passwords.hash_password_async(cmd.new_password))
        except DomainError as exc:
            return error_reply(exc)
        # The new epoch: the edge tells every edge at once that older tokens are void.
        result = {"username": cmd.username, "pwv": state.password_epoch + 1}

        async def append(conn: asyncpg.Connection, env: CommandEnvelope) -> Decision:
            current = await load_user(conn, cmd.username)
            if current.version != state.version:
                raise DomainError("CONFLICT", "the user changed meanwhile, retry")
            return _to_user(current, events, result)

        return await store.execute(envelope, append)

    return {"login": login, "change_password": change_password}


async def set_password(
    store: EventStore, username: str, password: str, *, scope: str = "admin", create_only: bool = False
) -> CommandReply:
    """Create the user or reset its password: used by admin bootstrap and `chatbus admin set-password`."""
    password_hash = await passwords.hash_password_async(password)

    async def handler(conn: asyncpg.Connection, envelope: CommandEnvelope) -> Decision:
        state = await load_user(conn, username)
        if create_only and state.exists:
            raise DomainError("CONFLICT", f"user '{username}' already exists")
        return _to_user(state, domain.decide_set_password(state, password_hash, scope))

    envelope = CommandEnvelope(command_id=uuid.uuid4(), type="auth.set_password", payload={"username": username})
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
