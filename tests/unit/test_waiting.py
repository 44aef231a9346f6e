"""wait_until: returns the first truthy value, fails with a message that says what never happened."""

from __future__ import annotations

import pytest

from tests.waiting import WaitTimeout, wait_until


async def test_returns_the_first_truthy_value() -> None:
    calls = iter([0, None, [], "ready", "later"])
    assert await wait_until(lambda: next(calls), interval=0) == "ready"


async def test_awaits_an_async_predicate() -> None:
    seen: list[int] = []

    async def grows() -> list[int] | None:
        seen.append(1)
        return list(seen) if len(seen) == 3 else None

    assert await wait_until(grows, interval=0) == [1, 1, 1]


async def test_times_out_naming_the_wait_and_the_state() -> None:
    with pytest.raises(WaitTimeout, match=r"the answer \(last value 0\); state: s=41"):
        await wait_until(lambda: 0, timeout=0, interval=0, message="the answer", state=lambda: "s=41")


async def test_other_errors_end_the_wait_at_once() -> None:
    def broken() -> bool:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await wait_until(broken, timeout=60)


async def test_retry_on_errors_count_as_not_yet() -> None:
    attempts = iter([ConnectionError("refused"), ConnectionError("refused"), "up"])

    def probe() -> str:
        value = next(attempts)
        if isinstance(value, Exception):
            raise value
        return value

    assert await wait_until(probe, interval=0, retry_on=(ConnectionError,)) == "up"
    with pytest.raises(WaitTimeout, match="last error ConnectionError") as info:
        await wait_until(lambda: probe_down(), timeout=0, interval=0, retry_on=(ConnectionError,))
    assert isinstance(info.value.__cause__, ConnectionError)


def probe_down() -> bool:
    raise ConnectionError("still down")
