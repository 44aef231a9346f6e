"""The command client the edge uses: one NATS request per command, typed failures."""

from __future__ import annotations

import asyncio
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS

from bus import subjects
from schemas.envelope import CommandEnvelope, CommandReply, command_encoder, reply_decoder

DEFAULT_TIMEOUT = 10.0
# A command still unanswered after this long makes the client ask whether any worker of its domain
# is left; if none is (the one handling it died), it fails at once with 503 instead of a timeout.
LIVENESS_AFTER = 1.0
LIVENESS_EVERY = 0.5


class BusUnavailable(Exception):
    """Nobody serves the command (no worker of that domain, or NATS is down): 503."""


class BusTimeout(Exception):
    """The command was sent but no reply came in time; it may or may not have been applied: 504."""


async def wait_for_workers(nc: NATS, domains: list[str] | tuple[str, ...], *, timeout: float = 60.0) -> None:
    """Until a worker answers for each domain (raises TimeoutError after `timeout`)."""
    async with asyncio.timeout(timeout):
        for domain in domains:
            while True:
                try:
                    await nc.request(subjects.command(domain, "_ping"), b"", timeout=1)
                    break
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                    await asyncio.sleep(0.1)


class CommandClient:
    def __init__(self, nc: NATS, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.nc = nc
        self.timeout = timeout
        # One liveness ping per domain at a time, shared by every command waiting on that domain.
        self._probes: dict[str, asyncio.Task[bool]] = {}
        self._probed_at: dict[str, float] = {}

    async def _served(self, domain: str) -> bool:
        """Does any worker still serve `domain`? Only "no responders" says no: a slow answer is a busy worker."""
        loop = asyncio.get_running_loop()
        probe = self._probes.get(domain)
        if probe is None or (probe.done() and loop.time() - self._probed_at[domain] >= LIVENESS_EVERY):
            probe = asyncio.create_task(self._ping(domain))
            self._probes[domain] = probe
            self._probed_at[domain] = loop.time()
        return await asyncio.shield(probe)

    async def _ping(self, domain: str) -> bool:
        try:
            await self.nc.request(subjects.command(domain, "_ping"), b"", timeout=LIVENESS_AFTER)
        except nats.errors.NoRespondersError:
            return False
        except Exception:  # timeout, reconnecting: not proof that the workers are gone
            return True
        return True

    async def _request(self, domain: str, subject: str, data: bytes, timeout: float) -> bytes:
        """The reply's data. Still unanswered after LIVENESS_AFTER, a timer asks (again every
        LIVENESS_AFTER) whether any worker serves the domain; none left cancels the wait: BusUnavailable.
        A timer rather than a task of its own and `asyncio.wait` per command: this is every write's path."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        state: dict[str, Any] = {"done": False, "gone": False, "probe": None}

        def check() -> None:
            probe = state["probe"] = asyncio.ensure_future(self._served(domain))
            probe.add_done_callback(verdict)

        def verdict(probe: asyncio.Future[bool]) -> None:
            if state["done"]:
                return
            served = probe.cancelled() or probe.exception() is not None or probe.result()
            if served:
                state["timer"] = loop.call_later(LIVENESS_AFTER, check)
            else:
                state["gone"] = True
                task.cancel()

        state["timer"] = loop.call_later(LIVENESS_AFTER, check)
        try:
            msg = await self.nc.request(subject, data, timeout=timeout)
            return msg.data
        except asyncio.CancelledError:
            if state["gone"] and task.uncancel() == 0:
                raise BusUnavailable(f"the worker serving {domain} went away before answering") from None
            raise
        finally:
            state["done"] = True
            state["timer"].cancel()

    async def send(
        self,
        domain: str,
        action: str,
        envelope: CommandEnvelope,
        *,
        timeout: float | None = None,
        encoded: bytes | None = None,  # the envelope already encoded by the caller (it checked the size)
    ) -> CommandReply:
        subject = subjects.command(domain, action)
        if not self.nc.is_connected:
            raise BusUnavailable("message bus is not connected")
        data = encoded if encoded is not None else command_encoder.encode(envelope)
        try:
            data = await self._request(domain, subject, data, timeout or self.timeout)
        except nats.errors.NoRespondersError as exc:
            raise BusUnavailable(f"no worker serves {domain}") from exc
        except nats.errors.TimeoutError as exc:
            raise BusTimeout(f"{subject} timed out") from exc
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError) as exc:
            raise BusUnavailable("message bus is not connected") from exc
        return reply_decoder.decode(data)
