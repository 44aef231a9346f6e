"""Long-running loops the workers share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from nats.aio.subscription import Subscription

log = logging.getLogger("chatbus.loops")


async def reload_on_wake(
    wake: asyncio.Event, interval: float, reload: Callable[[], Awaitable[None]], what: str
) -> None:
    """Run `reload` whenever `wake` is set, and every `interval` seconds in case a wake-up was missed.
    A failed reload is logged and the previous state kept; the loop goes on until cancelled."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval)
        wake.clear()
        try:
            await reload()
        except Exception:
            log.warning("could not reload %s; keeping the running ones", what, exc_info=True)


async def stop_loops(tasks: Iterable[asyncio.Task[None]], subs: Iterable[Subscription]) -> None:
    """Cancel a component's loops and wait for them, then drop its subscriptions; a connection that is
    already gone does not keep the rest from stopping."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    for sub in subs:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
