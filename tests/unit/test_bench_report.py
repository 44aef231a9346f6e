"""The benchmark's verdicts (tests/bench/report.py): pure functions of a result document."""

from __future__ import annotations

from typing import Any

from tests.bench.report import (
    BASELINE_CHAT_TURNS_PER_S,
    TARGET_CHAT_TURNS_FACTOR,
    chat_overhead,
    report,
    targets,
)


def _scenario(
    key: str,
    rps: float,
    *,
    p50: float = 1.0,
    p99: float = 2.0,
    group: str = "http",
    c: int = 32,
    ttft: float | None = None,
) -> dict[str, Any]:
    s: dict[str, Any] = {
        "key": key,
        "name": key,
        "group": group,
        "concurrency": c,
        "rps": rps,
        "errors": 0,
        "requests": int(rps),
        "latency_ms": {"p50": p50, "p99": p99},
        "baseline": key == "GET /bare",
        "statuses": {},
        "unexpected_2xx": 0,
        "error_samples": {},
        "connection_errors": {},
        "loadgen_cpu_pct": 10.0,
    }
    if ttft is not None:
        s["ttft_ms"] = {"p50": ttft, "p99": ttft * 2}
    return s


def _chat(c: int, *, chatbus_rps: float, added: float) -> list[dict[str, Any]]:
    return [
        _scenario(f"chat-direct-json-c{c}", 5000, p50=1.0, group="chat", c=c),
        _scenario(f"chat-chatbus-json-c{c}", chatbus_rps, p50=1.0 + added, group="chat", c=c),
        _scenario(f"chat-direct-sse-c{c}", 5000, p50=1.0, group="chat", c=c, ttft=0.5),
        _scenario(f"chat-chatbus-sse-c{c}", chatbus_rps, p50=1.0 + added, group="chat", c=c, ttft=0.5 + added),
    ]


def _result(**extra: Any) -> dict[str, Any]:
    scenarios = [
        _scenario("GET /bare", 20000),
        _scenario("GET /api/presets", 12000),
        _scenario("POST /api/presets", 2500, p99=20.0),
        *_chat(1, chatbus_rps=400, added=2.0),
        *_chat(32, chatbus_rps=600, added=25.0),
    ]
    result: dict[str, Any] = {
        "config": {"concurrency": 32},
        "scenarios": scenarios,
        "chat_overhead": chat_overhead(scenarios),
        "idle_rss_total_mib": 240.0,
        **extra,
    }
    return result


def _verdicts(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["what"]: t for t in targets(result)}


def _find(verdicts: dict[str, dict[str, Any]], words: str) -> dict[str, Any]:
    (match,) = [t for what, t in verdicts.items() if words in what]
    return match


PIPELINE = [
    {"conversations": 1, "per_second": 330.0, "errors": 0, "latency_ms": {"p50": 3.0, "p99": 5.0}},
    {"conversations": 32, "per_second": 500.0, "errors": 0, "latency_ms": {"p50": 70.0, "p99": 120.0}},
]
REPLAY = {"events": 60000, "seconds": 1.0, "events_per_s": 60000.0, "batch": 5000, "source": "x"}
WS = {
    "clients": 1000,
    "processes": 2,
    "events": 10,
    "expected": 10000,
    "received": 10000,
    "missing": 0,
    "latency_ms": {"p50": 40.0, "p90": 80.0, "p99": 120.0, "max": 200.0},
}


def test_every_target_of_the_issue_is_listed_and_met_when_the_figures_are() -> None:
    verdicts = _verdicts(_result(pipeline=PIPELINE, replay=REPLAY, ws_fanout=WS))
    assert len(verdicts) == 11
    assert all(t["met"] for t in verdicts.values()), [t for t in verdicts.values() if not t["met"]]


def test_a_phase_left_out_is_a_miss_that_says_so() -> None:
    verdicts = _verdicts(_result())
    for words in ("replay", "WebSocket", "pipeline, 1 conversation", "pipeline, 32 conversations"):
        t = _find(verdicts, words)
        assert not t["met"] and "not measured" in t["measured"]


def test_chat_turns_at_c32_are_held_against_twice_the_issue_baseline() -> None:
    goal = BASELINE_CHAT_TURNS_PER_S * TARGET_CHAT_TURNS_FACTOR
    result = _result()
    result["scenarios"] = [
        {**s, "rps": goal - 1} if s["key"] == "chat-chatbus-json-c32" else s for s in result["scenarios"]
    ]
    assert not _find(_verdicts(result), "turns/s >=")["met"]
    result["scenarios"] = [
        {**s, "rps": goal} if s["key"] == "chat-chatbus-json-c32" else s for s in result["scenarios"]
    ]
    assert _find(_verdicts(result), "turns/s >=")["met"]


def test_added_latency_targets_use_the_chatbus_minus_direct_p50() -> None:
    verdicts = _verdicts(_result())
    assert _find(verdicts, "chat c=1 adds")["met"]  # +2 ms
    assert _find(verdicts, "added first-token p50 <= 30")["met"]  # +25 ms
    slow = _result()
    slow["scenarios"] = [s for s in slow["scenarios"] if not s["key"].endswith("c1")] + _chat(
        1, chatbus_rps=400, added=3.5
    )
    slow["chat_overhead"] = chat_overhead(slow["scenarios"])
    assert not _find(_verdicts(slow), "chat c=1 adds")["met"]


def test_the_pipeline_is_held_against_the_chat_turn_rate_at_the_same_concurrency() -> None:
    # 32 conversations: 400/s against 600 turns/s is 0.67x, under 0.8x; 1: 330 against 400 is 0.83x.
    slow = [PIPELINE[0], {**PIPELINE[1], "per_second": 400.0}]
    verdicts = _verdicts(_result(pipeline=slow))
    assert _find(verdicts, "pipeline, 1 conversation")["met"]
    loaded = _find(verdicts, "pipeline, 32 conversations")
    assert not loaded["met"] and "0.67x" in loaded["measured"]


def test_fan_out_with_deliveries_missing_is_a_miss_however_fast() -> None:
    verdicts = _verdicts(_result(ws_fanout={**WS, "received": 9990, "missing": 10}))
    t = _find(verdicts, "WebSocket")
    assert not t["met"] and "10 deliveries missing" in t["measured"]


def test_writes_need_both_rate_and_p99() -> None:
    result = _result()
    result["scenarios"] = [
        {**s, "latency_ms": {"p50": 5.0, "p99": 26.0}} if s["key"] == "POST /api/presets" else s
        for s in result["scenarios"]
    ]
    verdicts = _verdicts(result)
    assert _find(verdicts, "writes >=")["met"]
    assert not _find(verdicts, "write p99")["met"]


def test_the_report_prints_a_verdict_per_target() -> None:
    result = _result(pipeline=PIPELINE, replay=REPLAY, ws_fanout=WS)
    result.update(
        timestamp="t",
        machine={"git": "x", "nproc": 2, "cpu_model": "cpu", "python": "3.11"},
        config={"concurrency": 32, "warmup": 1, "duration": 5},
        postgres={"fsync": "on", "synchronous_commit": "on", "wal_sync_method": "fdatasync"},
        data_dir_fs="ext4 (/)",
        fsync_probe={"p50_ms": 1.0, "p99_ms": 2.0},
        idle_memory={"edge": {"rss_mib": 240.0, "pss_mib": 200.0, "processes": 1}},
        idle_pss_total_mib=200.0,
    )
    result["pipeline"] = [{**p, "replies": 10, "loadgen_cpu_pct": 5.0} for p in PIPELINE]
    result["targets"] = targets(result)
    text = report(result)
    assert text.count("[MET]") == 11
    assert "11 of 11 targets met" in text
