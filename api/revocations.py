"""Which tokens are revoked, known to every edge without a query per request.

Postgres (`revoked_tokens`, written by the auth projection) is the truth. Each edge keeps the
unexpired set in memory: loaded at start and refreshed periodically, fed live by the relayed
`TokenRevoked` events, and told at once by the edge that revoked a token (a core NATS message sent
before that edge answers its client), so a token logged out on one edge is refused on the next
request to any other.

A password change voids every token and login link issued before it: tokens carry the user's password
epoch (`pwv`), and the same machinery keeps each user's current epoch (`users.password_epoch`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from api.hub import EventHub, HubEvent
from bus import subjects
from services.auth import queries
from services.auth.tokens import TokenClaims

log = logging.getLogger("chatbus.revocations")

REFRESH_INTERVAL = 60.0


class Revocation(msgspec.Struct):
    jti: str
    expires_at: float
    # Set instead of a jti when a user's password changed: tokens of an older epoch are void.
    username: str = ""
    epoch: int = 0


class _EventBody(msgspec.Struct):
    data: Revocation


class _StreamOnly(msgspec.Struct):
    stream: str


_decode_revocation = msgspec.json.Decoder(Revocation).decode
_decode_event = msgspec.json.Decoder(_EventBody).decode
_decode_stream = msgspec.json.Decoder(_StreamOnly).decode


class RevocationList:
    def __init__(self, nc: NATS, pool: asyncpg.Pool, hub: EventHub) -> None:
        self.nc = nc
        self.pool = pool
        self.hub = hub
        self._expiry: dict[str, float] = {}
        self._epochs: dict[str, int] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def add(self, jti: str, expires_at: float) -> None:
        self._expiry[jti] = expires_at

    def set_epoch(self, username: str, epoch: int) -> None:
        # Epochs only grow: a late message never brings an old one back.
        if epoch > self._epochs.get(username, 0):
            self._epochs[username] = epoch

    def is_revoked(self, jti: str) -> bool:
        return jti in self._expiry

    def is_void(self, claims: TokenClaims) -> bool:
        """Revoked, or issued before the user's last password change."""
        return claims.jti in self._expiry or claims.pwv < self._epochs.get(claims.sub, 0)

    async def start(self) -> None:
        # Subscribe before loading, so that nothing revoked in between is missed.
        await self.nc.subscribe(subjects.TOKEN_REVOKED, cb=self._on_message)
        self.hub.on_event(self._on_event)
        await self.refresh()
        self._refresher = asyncio.create_task(self._refresh_forever())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher

    async def refresh(self) -> None:
        now = time.time()
        for jti, expires_at in await queries.active_revocations(self.pool):
            self._expiry[jti] = expires_at
        for jti in [j for j, exp in self._expiry.items() if exp < now]:
            del self._expiry[jti]  # an expired token is refused for its expiry anyway
        for username, epoch in await queries.password_epochs(self.pool):
            self.set_epoch(username, epoch)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            try:
                await self.refresh()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("could not refresh revoked tokens; keeping the known set", exc_info=True)

    async def announce(self, jti: str, expires_at: float) -> None:
        """Tell every edge now (after the revocation is committed)."""
        self.add(jti, expires_at)
        await self.nc.publish(subjects.TOKEN_REVOKED, msgspec.json.encode(Revocation(jti, expires_at)))
        await self.nc.flush(timeout=2)

    async def announce_epoch(self, username: str, epoch: int) -> None:
        """Tell every edge now that `username`'s tokens from before `epoch` are void."""
        self.set_epoch(username, epoch)
        await self.nc.publish(subjects.TOKEN_REVOKED, msgspec.json.encode(Revocation("", 0, username, epoch)))
        await self.nc.flush(timeout=2)

    async def _on_message(self, msg: Msg) -> None:
        try:
            revocation = _decode_revocation(msg.data)
        except msgspec.DecodeError:
            log.warning("ignoring a malformed revocation message")
            return
        if revocation.username:
            self.set_epoch(revocation.username, revocation.epoch)
        else:
            self.add(revocation.jti, revocation.expires_at)

    def _on_event(self, event: HubEvent) -> None:
        if event.type == "TokenRevoked":
            try:
                revocation = _decode_event(event.body).data
            except msgspec.DecodeError:
                return
            self.add(revocation.jti, revocation.expires_at)
        elif event.type == "PasswordChanged":
            # The event does not carry the epoch (nor should it): read it from the table.
            try:
                username = _decode_stream(event.body).stream.removeprefix("user-")
            except msgspec.DecodeError:
                return
            task = asyncio.create_task(self._load_epoch(username))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _load_epoch(self, username: str) -> None:
        try:
            self.set_epoch(username, await queries.password_epoch(self.pool, username))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("could not read the password epoch of %s; the periodic refresh will", username)
