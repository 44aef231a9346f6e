"""A wall clock the test moves: product code that takes a `clock` (a `() -> float` of epoch seconds)
is given one of these instead of `time.time`, so a test reaches a window's end or a TTL without waiting."""

from __future__ import annotations


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
