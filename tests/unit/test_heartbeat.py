"""The liveness rule: an instance is live for the TTL after its last heartbeat, judged by the reader's clock."""

from __future__ import annotations

from datetime import UTC, datetime

from bus.heartbeat import TTL_SECONDS, Instance, is_live

BEAT = 1_800_000_000.0


def instance(last: float) -> Instance:
    stamp = datetime.fromtimestamp(last, UTC).isoformat()
    return Instance(role="worker", instance_id="w-1", host="h", pid=1, started_at=stamp, last_heartbeat=stamp)


def test_live_until_the_ttl_after_the_last_beat() -> None:
    assert is_live(instance(BEAT), BEAT)
    assert is_live(instance(BEAT), BEAT + TTL_SECONDS - 0.001)
    assert not is_live(instance(BEAT), BEAT + TTL_SECONDS)


def test_a_beat_from_a_clock_slightly_ahead_counts_as_live() -> None:
    assert is_live(instance(BEAT + 1), BEAT)
