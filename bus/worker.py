"""The worker runtime: one queue group per domain, a task per command under a concurrency bound,
graceful drain on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import asyncpg
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from bus import db, logs, subjects
from bus.gcpolicy import freeze_startup_heap
from schemas.envelope import (
    CommandEnvelope,
    CommandReply,
    ErrorInfo,
    actor_problem,
    command_decoder,
    command_encoder,
)

log = logging.getLogger("chatbus.worker")

# `cmd.<domain>._ping` answers as soon as a worker serves the domain (readiness checks).
PING_ACTION = "_ping"

CommandFn = Callable[[CommandEnvelope], Awaitable[CommandReply]]


class WorkerRuntime:
    def __init__(self, nc: NATS, domain: str, handlers: Mapping[str, CommandFn], *, concurrency: int = 64) -> None:
        self.nc = nc
        self.domain = domain
        self.handlers = dict(handlers)
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sub: Subscription | None = None
        self.handled = 0  # commands answered by this runtime

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(
            subjects.command_wildcard(self.domain),
            queue=subjects.worker_queue(self.domain),
            cb=self._on_message,
            pending_msgs_limit=100_000,
        )
        freeze_startup_heap()  # serving now: the heap so far is start-up state (bus/gcpolicy.py)

    async def _on_message(self, msg: Msg) -> None:
        # The callback runs one message at a time; waiting for a slot here is the backpressure.
        await self._slots.acquire()
        task = asyncio.create_task(self._handle(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, msg: Msg) -> None:
        try:
            reply = await self._dispatch(msg)
            if msg.reply:
                await msg.respond(command_encoder.encode(reply))
            self.handled += 1
        except Exception:
            log.exception("failed to answer %s", msg.subject)
        finally:
            self._slots.release()

    async def _dispatch(self, msg: Msg) -> CommandReply:
        action = msg.subject.rsplit(".", 1)[-1]
        if action == PING_ACTION:
            return CommandReply(ok=True, result={"domain": self.domain})
        handler = self.handlers.get(action)
        if handler is None:
            return CommandReply(ok=False, error=ErrorInfo("NOT_FOUND", f"unknown command {msg.subject}", 404))
        try:
            envelope = command_decoder.decode(msg.data)
        except msgspec.DecodeError as exc:
            return CommandReply(ok=False, error=ErrorInfo("INVALID_ARGS", f"bad command envelope: {exc}", 400))
        # Anyone who can publish on the bus could claim any actor; at least it must be a principal
        # (the command name is the subject's, not the envelope's `type`, which the sender chooses).
        problem = actor_problem(envelope.actor, f"{self.domain}.{action}")
        if problem is not None:
            log.warning("command %s.%s refused: %s", self.domain, action, problem)
            return CommandReply(ok=False, error=ErrorInfo("FORBIDDEN", f"refused: {problem}", 403))
        # Lines logged while handling the command carry the id of the HTTP request that sent it.
        token = logs.set_request_id(envelope.request_id)
        try:
            # The outcome is logged once, by the edge that sent the command (api/commands.py).
            return await handler(envelope)
        except asyncpg.DataError as exc:
            # Input Postgres cannot hold (a NUL character, a number out of range): the caller's fault.
            log.info("command %s: data refused by the database (%r)", envelope.type, exc)
            return CommandReply(ok=False, error=ErrorInfo("VALIDATION_ERROR", f"invalid data: {exc}", 400))
        except db.UNAVAILABLE as exc:
            log.warning("command %s: database unavailable (%r)", envelope.type, exc)
            return CommandReply(ok=False, error=ErrorInfo("UNAVAILABLE", "the database is unavailable; retry", 503))
        except Exception as exc:
            log.exception("command %s failed", envelope.type)
            return CommandReply(
                ok=False, error=ErrorInfo("INTERNAL_ERROR", f"command failed: {type(exc).__name__}", 500)
            )
        finally:
            logs.reset_request_id(token)

    async def stop(self) -> None:
        """Stop taking commands, then let the ones in flight finish."""
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # the connection may already be gone
                log.debug("unsubscribe failed", exc_info=True)
            self._sub = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
