"""A process's live view of the config document: loaded at start, replaced by every relayed
ConfigChanged/ConfigRolledBack event (each carries the whole document), refreshed now and then in
case an event was missed while NATS was away. Edges and workers read settings from here, so a
change applies within a second everywhere without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from bus import subjects
from schemas.config import ConfigDocument
from services.config import queries

log = logging.getLogger("chatbus.config")

REFRESH_INTERVAL = 30.0


class _Event(msgspec.Struct):
    version: int


_decode_event = msgspec.json.Decoder(_Event).decode


class ConfigCache:
    def __init__(self, pool: asyncpg.Pool, nc: NATS) -> None:
        self.pool = pool
        self.nc = nc
        self.document = ConfigDocument()
        self.version = 0
        self._listeners: list[Callable[[ConfigDocument], None]] = []
        self._refresher: asyncio.Task[None] | None = None

    def on_change(self, listener: Callable[[ConfigDocument], None]) -> None:
        self._listeners.append(listener)

    def _apply(self, document: dict[str, Any], version: int) -> None:
        if version <= self.version:
            return
        try:
            self.document = msgspec.convert(document, ConfigDocument)
        except msgspec.ValidationError:
            log.exception("ignoring config version %d: it does not fit the schema", version)
            return
        self.version = version
        for listener in self._listeners:
            listener(self.document)

    async def start(self) -> None:
        await self.nc.subscribe(subjects.event("config", "*"), cb=self._on_event)
        await self.refresh()
        self._refresher = asyncio.create_task(self._refresh_forever())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher

    async def refresh(self) -> None:
        state = await queries.current(self.pool)
        self._apply(state.document, state.version)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            try:
                await self.refresh()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("could not refresh the config; keeping version %d", self.version)

    async def _on_event(self, msg: Msg) -> None:
        # Published events carry masked secrets, so the document itself is read from Postgres.
        try:
            event = _decode_event(msg.data)
        except msgspec.DecodeError:
            return
        if event.version > self.version:
            await self.refresh()
