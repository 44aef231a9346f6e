"""The channel try order of a chat turn (API.md §5), with an injected clock and random source."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from schemas.channels import Channel
from services.channels.selection import order_channels, pick_key, usable

T = TypeVar("T")
NOW = 1_700_000_000.0
EPOCH = datetime.fromtimestamp(0, UTC)


def channel(id: str, *, priority: int = 100, weight: int = 1, **kw: Any) -> Channel:
    fields: dict[str, Any] = {
        "id": id,
        "name": id,
        "adapter_type": "openai",
        "base_url": "https://api.example.com",
        "api_key": "sk-test",
        "api_keys": [],
        "models": [],
        "priority": priority,
        "weight": weight,
        "enabled": True,
        "timeout": {},
        "retry": {},
        "advanced": {},
        "custom_headers": {},
        "proxy": None,
        "status": "active",
        "last_error": None,
        "tested_at": None,
        "cooldown_until": None,
        "created_at": EPOCH,
        "updated_at": EPOCH,
        "version": 1,
    }
    fields.update(kw)
    return Channel(**fields)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class ScriptedRng(random.Random):
    """Picks the first of the pool (so the order is predictable) and records the weights it was offered."""

    def __init__(self) -> None:
        super().__init__(0)
        self.offers: list[tuple[list[str], list[float]]] = []

    def choices(self, population: Sequence[T], weights: Sequence[float] | None = None, **_: Any) -> list[T]:  # type: ignore[override]
        self.offers.append(([getattr(p, "id", str(p)) for p in population], list(weights or [])))
        return [population[0]]


def ids(channels: Sequence[Channel]) -> list[str]:
    return [c.id for c in channels]


# ---- usable ----


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, True),
        ({"status": "idle"}, True),
        ({"status": "error"}, False),
        ({"status": "disabled"}, False),
        ({"enabled": False}, False),
        ({"status": "cooldown", "cooldown_until": at(NOW + 5)}, False),
        ({"status": "cooldown", "cooldown_until": at(NOW - 5)}, True),  # the cooldown has ended
        ({"status": "cooldown", "cooldown_until": at(NOW)}, True),
        ({"models": ["m1", "m2"]}, True),
        ({"models": ["other"]}, False),
    ],
)
def test_usable(kw: dict[str, Any], expected: bool) -> None:
    assert usable(channel("c", **kw), "m1", NOW) is expected


def test_a_channel_without_a_model_list_serves_any_model_and_no_model_means_any() -> None:
    assert usable(channel("c"), "anything", NOW)
    assert usable(channel("c", models=["x"]), None, NOW)


# ---- order_channels ----


def test_lower_priority_tier_first_whatever_the_weight() -> None:
    channels = [channel("late", priority=200, weight=100), channel("early", priority=10), channel("mid", priority=50)]
    for seed in range(20):
        assert ids(order_channels(channels, None, rng=random.Random(seed), now=NOW)) == ["early", "mid", "late"]


def test_weighted_random_within_a_tier_offers_each_channels_weight() -> None:
    rng = ScriptedRng()
    channels = [channel("a", weight=1), channel("b", weight=5), channel("c", weight=3), channel("z", priority=200)]
    assert ids(order_channels(channels, None, rng=rng, now=NOW)) == ["a", "b", "c", "z"]
    # Without replacement: each pick leaves the pool, with its weight.
    assert rng.offers == [(["a", "b", "c"], [1, 5, 3]), (["b", "c"], [5, 3]), (["c"], [3]), (["z"], [1])]


def test_weights_shape_the_first_pick() -> None:
    channels = [channel("light", weight=1), channel("heavy", weight=99)]
    rng = random.Random(1234)
    firsts = Counter(order_channels(channels, None, rng=rng, now=NOW)[0].id for _ in range(2000))
    assert firsts["heavy"] > firsts["light"] * 10
    assert firsts["light"] > 0  # the light one is not starved


def test_every_usable_channel_is_tried_once() -> None:
    channels = [channel(f"c{i}", priority=i % 3, weight=1 + i % 4) for i in range(12)]
    for seed in range(10):
        ordered = ids(order_channels(channels, None, rng=random.Random(seed), now=NOW))
        assert sorted(ordered) == sorted(ids(channels))


def test_skips_error_cooling_disabled_and_wrong_model() -> None:
    channels = [
        channel("ok", models=["m1"]),
        channel("broken", status="error"),
        channel("cooling", status="cooldown", cooldown_until=at(NOW + 30)),
        channel("cooled", status="cooldown", cooldown_until=at(NOW - 30), priority=200),
        channel("off", enabled=False),
        channel("other-model", models=["m2"]),
    ]
    assert ids(order_channels(channels, "m1", rng=ScriptedRng(), now=NOW)) == ["ok", "cooled"]


def test_pinned_channel_is_the_only_candidate() -> None:
    channels = [channel("a", priority=1), channel("b", priority=2)]
    assert ids(order_channels(channels, None, pinned="b", now=NOW)) == ["b"]
    assert order_channels(channels, None, pinned="missing", now=NOW) == []


def test_a_pinned_channel_must_still_be_usable() -> None:
    channels = [channel("a", status="error"), channel("b")]
    assert order_channels(channels, None, pinned="a", now=NOW) == []
    assert order_channels([channel("c", models=["x"])], "y", pinned="c", now=NOW) == []


def test_no_channels() -> None:
    assert order_channels([], "m", now=NOW) == []


# ---- pick_key ----


def test_pick_key_from_enabled_keys_by_weight() -> None:
    keys = [
        {"key": "k-off", "enabled": False, "weight": 100},
        {"key": "k1", "weight": 1},
        {"key": "k2", "weight": 3},
    ]
    rng = ScriptedRng()
    assert pick_key(channel("c", api_keys=keys), rng) == "k1"
    assert rng.offers == [(["{'key': 'k1', 'weight': 1}", "{'key': 'k2', 'weight': 3}"], [1, 3])]


def test_pick_key_falls_back_to_the_single_key() -> None:
    assert pick_key(channel("c", api_key="sk-one")) == "sk-one"
    assert pick_key(channel("c", api_key="sk-one", api_keys=[{"key": "k", "enabled": False}])) == "sk-one"
    assert pick_key(channel("c", api_key=None)) is None
