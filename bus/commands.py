"""The command client the edge uses: one NATS request per command, typed failures."""

from __future__ import annotations

import nats.errors
from nats.aio.client import Client as NATS

from bus import subjects
from schemas.envelope import CommandEnvelope, CommandReply, command_encoder, reply_decoder

DEFAULT_TIMEOUT = 10.0


class BusUnavailable(Exception):
    """Nobody serves the command (no worker of that domain, or NATS is down): 503."""


class BusTimeout(Exception):
    """The command was sent but no reply came in time; it may or may not have been applied: 504."""


async def wait_for_workers(nc: NATS, domains: list[str] | tuple[str, ...], *, timeout: float = 60.0) -> None:
    """Until a worker answers for each domain (raises TimeoutError after `timeout`)."""
    import asyncio

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

    async def send(
        self, domain: str, action: str, envelope: CommandEnvelope, *, timeout: float | None = None
    ) -> CommandReply:
        subject = subjects.command(domain, action)
        if not self.nc.is_connected:
            raise BusUnavailable("message bus is not connected")
        try:
            msg = await self.nc.request(subject, command_encoder.encode(envelope), timeout=timeout or self.timeout)
        except nats.errors.NoRespondersError as exc:
            raise BusUnavailable(f"no worker serves {domain}") from exc
        except nats.errors.TimeoutError as exc:
            raise BusTimeout(f"{subject} timed out") from exc
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError) as exc:
            raise BusUnavailable("message bus is not connected") from exc
        return reply_decoder.decode(msg.data)
