"""One way for a test to wait for state: poll a predicate, bounded, and say what never happened."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """Raised by `wait_until`; an AssertionError so that pytest reports it as a failed expectation."""


@overload
async def wait_until(
    predicate: Callable[[], Awaitable[T]],
    *,
    timeout: float = ...,
    interval: float = ...,
    message: str = ...,
    state: Callable[[], object] | None = ...,
    retry_on: tuple[type[Exception], ...] = ...,
) -> T: ...


@overload
async def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = ...,
    interval: float = ...,
    message: str = ...,
    state: Callable[[], object] | None = ...,
    retry_on: tuple[type[Exception], ...] = ...,
) -> T: ...


async def wait_until(
    predicate: Callable[[], Any],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "",
    state: Callable[[], object] | None = None,
    retry_on: tuple[type[Exception], ...] = (),
) -> Any:
    """Call `predicate` (sync or async) until it returns something truthy, and return that value.

    After `timeout` seconds raise WaitTimeout naming `message` (or the predicate), the last value seen
    and `state()` if given. An exception of a `retry_on` type counts as "not yet" (a read refused while
    a server restarts); the last one is chained. Any other exception ends the wait at once."""
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            error = None
        except retry_on as exc:
            value, error = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            seen = f"last error {error!r}" if error is not None else f"last value {value!r}"
            extra = f"; state: {state()}" if state is not None else ""
            raise WaitTimeout(f"not within {timeout}s: {what} ({seen}){extra}") from error
        await asyncio.sleep(interval)
