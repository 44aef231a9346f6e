"""The benchmark's verdict over a finished run: the chat overhead, the targets, and the printed table.
Pure functions of the result document (the JSON that `run` writes)."""

from __future__ import annotations

import math
from typing import Any

# DESIGN.md "Performance" targets on a 2-core machine.
TARGET_READ_RATIO = 0.5
TARGET_WRITE_RPS = 2000.0
TARGET_WRITE_P99_MS = 25.0
TARGET_IDLE_RSS_MIB = 250.0
TARGET_CHAT_ADDED_MS = 3.0  # p50, to the first token and to the full reply, at concurrency 1
NOT_IN_TOTAL = ("bare", "llm")  # measured, but not chatbus: left out of the idle total
QUANTILES = ("p50", "p99")
# (what, kind of the scenario pair, the metric compared)
OVERHEADS = (
    ("full_reply", "json", "latency_ms"),
    ("first_token", "sse", "ttft_ms"),
    ("full_stream", "sse", "latency_ms"),
)


def label(s: dict[str, Any]) -> str:
    return f"{s['name']} c={s['concurrency']}" if s.get("group") == "chat" else str(s["name"])


def chat_overhead(scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    """What chatbus adds to a turn over calling the LLM directly, per concurrency: chatbus minus direct,
    quantile by quantile (`full_reply`: the JSON pair; `first_token` and `full_stream`: the SSE pair)."""
    by_key = {s["key"]: s for s in scenarios}
    out: dict[str, Any] = {}
    for c in sorted({s["concurrency"] for s in scenarios if s.get("group") == "chat"}):
        entry: dict[str, Any] = {}
        for what, kind, metric in OVERHEADS:
            direct, chatbus = by_key.get(f"chat-direct-{kind}-c{c}"), by_key.get(f"chat-chatbus-{kind}-c{c}")
            if direct is None or chatbus is None:
                continue
            entry[what] = {
                "added_ms": {q: round(chatbus[metric][q] - direct[metric][q], 3) for q in QUANTILES},
                "direct_ms": {q: direct[metric][q] for q in QUANTILES},
                "chatbus_ms": {q: chatbus[metric][q] for q in QUANTILES},
                "errors": direct["errors"] + chatbus["errors"],
            }
        tool, plain = by_key.get(f"chat-chatbus-tool-c{c}"), by_key.get(f"chat-chatbus-json-c{c}")
        if tool is not None and plain is not None:
            # What one tool round (model asks, cmd.tools.call, model answers) adds over a plain turn.
            entry["tool_round"] = {
                "added_ms": {q: round(tool["latency_ms"][q] - plain["latency_ms"][q], 3) for q in QUANTILES},
                "plain_ms": {q: plain["latency_ms"][q] for q in QUANTILES},
                "with_tool_ms": {q: tool["latency_ms"][q] for q in QUANTILES},
                "errors": tool["errors"],
            }
        out[f"c={c}"] = entry
    return out


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    by_name = {s["key"]: s for s in result["scenarios"]}
    bare, read, write = by_name["GET /bare"], by_name["GET /api/presets"], by_name["POST /api/presets"]
    ratio = read["rps"] / bare["rps"] if bare["rps"] else 0.0
    rss = result["idle_rss_total_mib"]
    out = [
        {
            "what": f"reads >= {TARGET_READ_RATIO}x bare",
            "measured": f"{ratio:.2f}x",
            "met": ratio >= TARGET_READ_RATIO,
        },
        {
            "what": f"writes >= {TARGET_WRITE_RPS:,.0f}/s",
            "measured": f"{write['rps']:,.0f}/s",
            "met": write["rps"] >= TARGET_WRITE_RPS and write["errors"] == 0,
        },
        {
            "what": f"write p99 <= {TARGET_WRITE_P99_MS:g} ms",
            "measured": f"{write['latency_ms']['p99']:.2f} ms",
            "met": write["latency_ms"]["p99"] <= TARGET_WRITE_P99_MS,
        },
    ]
    single = result.get("chat_overhead", {}).get("c=1", {})
    if "full_reply" in single and "first_token" in single:
        reply, first = single["full_reply"], single["first_token"]
        added = (reply["added_ms"]["p50"], first["added_ms"]["p50"])
        out.append(
            {
                "what": f"chat adds <= {TARGET_CHAT_ADDED_MS:g} ms p50 to first token and to the full reply (c=1)",
                "measured": f"first token +{added[1]:.2f} ms, full reply +{added[0]:.2f} ms"
                + (f" ({reply['errors'] + first['errors']} errors)" if reply["errors"] + first["errors"] else ""),
                "met": all(a <= TARGET_CHAT_ADDED_MS for a in added) and reply["errors"] + first["errors"] == 0,
            }
        )
    out.append(
        {
            "what": f"idle RSS <= {TARGET_IDLE_RSS_MIB:g} MiB",
            "measured": f"{rss:.1f} MiB",
            "met": rss <= TARGET_IDLE_RSS_MIB,
        }
    )
    return out


# -- the printed report --------------------------------------------------------------------------


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
    out = [line, "-" * len(line)]
    for row in rows:
        out.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
    return "\n".join(out)


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _added(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:+.2f}"


def report(result: dict[str, Any]) -> str:
    cfg, mem = result["config"], result["idle_memory"]
    lines = [
        "",
        f"chatbus bench  {result['timestamp']}  git {result['machine']['git']}",
        f"machine: {result['machine']['nproc']} CPUs ({result['machine']['cpu_model']}), "
        f"Python {result['machine']['python']}",
        f"load: {cfg['concurrency']} keep-alive connections, {cfg['warmup']:g}s warm-up + "
        f"{cfg['duration']:g}s per scenario, load generator in its own process",
        f"postgres: durable=True (fsync={result['postgres']['fsync']}, "
        f"synchronous_commit={result['postgres']['synchronous_commit']}, "
        f"wal_sync_method={result['postgres']['wal_sync_method']}) on {result['data_dir_fs']}; "
        f"8 KiB write+fdatasync p50 {result['fsync_probe']['p50_ms']:.2f} ms, "
        f"p99 {result['fsync_probe']['p99_ms']:.2f} ms",
        "",
    ]
    http = [s for s in result["scenarios"] if s.get("group", "http") == "http"]
    chat = [s for s in result["scenarios"] if s.get("group") == "chat"]
    bare_rps = next((s["rps"] for s in http if s["baseline"]), 0.0)
    rows = []
    for s in http:
        ratio = s["rps"] / bare_rps if bare_rps else float("nan")
        rows.append(
            [
                s["name"],
                str(s["requests"]),
                str(s["errors"]),
                f"{s['rps']:,.0f}",
                f"{s['latency_ms']['p50']:.2f}",
                f"{s['latency_ms']['p99']:.2f}",
                f"{ratio:.2f}x",
            ]
        )
    lines.append(render_table(["scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs bare"], rows))
    if chat:
        lines.append("")
        lines.append(
            "chat turns against a local instant LLM (FakeProvider, own process); direct = the LLM itself; "
            "p50/p99 = the full reply (end of the stream), TTFT = request sent -> first content token"
        )
        rows = [
            [
                s["name"],
                str(s["concurrency"]),
                str(s["requests"]),
                str(s["errors"]),
                f"{s['rps']:,.0f}",
                f"{s['latency_ms']['p50']:.2f}",
                f"{s['latency_ms']['p99']:.2f}",
                _ms(s["ttft_ms"]["p50"]) if "ttft_ms" in s else "-",
                _ms(s["ttft_ms"]["p99"]) if "ttft_ms" in s else "-",
            ]
            for s in chat
        ]
        headers = ["scenario", "c", "turns", "errors", "turns/s", "p50 ms", "p99 ms", "TTFT p50", "TTFT p99"]
        lines.append(render_table(headers, rows))
    lines.append("")
    for s in result["scenarios"]:
        cpu = s.get("server_cpu_pct", {})
        shown = ", ".join(f"{k} {v:.0f}%" for k, v in cpu.items() if v >= 1)
        extra = f"  statuses {s['statuses']}" if s["errors"] or s["unexpected_2xx"] else ""
        lines.append(
            f"  {label(s)}: CPU (% of a core) loadgen {s['loadgen_cpu_pct']:.0f}%, {shown}, other processes "
            f"{s.get('other_cpu_pct', float('nan')):.0f}%; machine busy "
            f"{s.get('machine_busy_pct', float('nan')):.0f}% of all cores{extra}"
        )
        if s.get("no_first_token"):
            lines.append(f"    2xx streams without a content token: {s['no_first_token']}")
        for status, sample in s["error_samples"].items():
            lines.append(f"    HTTP {status}: {sample[:160]}")
        if s["connection_errors"]:
            lines.append(f"    connection errors: {s['connection_errors']}")
    overhead = result.get("chat_overhead", {})
    if overhead:
        lines.append("")
        lines.append(
            "chat overhead: chatbus minus direct, ms (full reply: POST /api/chat vs the plain call; "
            "first token and full stream: POST /api/chat/stream vs the streamed call)"
        )
        columns = [(c, q) for c in overhead for q in QUANTILES]
        rows = []
        for what, _, _ in OVERHEADS:
            rows.append(
                [f"added to {what.replace('_', ' ')}"]
                + [_added(overhead[c].get(what, {}).get("added_ms", {}).get(q, float("nan"))) for c, q in columns]
            )
        lines.append(render_table(["", *(f"{c} {q}" for c, q in columns)], rows))
    lines.append("")
    rows = [
        [name, f"{m['rss_mib']:.1f}", f"{m['pss_mib']:.1f}", str(m["processes"])]
        for name, m in mem.items()
        if name not in NOT_IN_TOTAL
    ]
    rows.append(
        [
            "total",
            f"{result['idle_rss_total_mib']:.1f}",
            f"{result['idle_pss_total_mib']:.1f}",
            str(sum(m["processes"] for n, m in mem.items() if n not in NOT_IN_TOTAL)),
        ]
    )
    lines.append("idle memory (before the load; RSS sums each process tree, PSS splits shared pages)")
    lines.append(render_table(["process", "RSS MiB", "PSS MiB", "procs"], rows))
    outside = [f"{n} {mem[n]['rss_mib']:.1f} MiB" for n in NOT_IN_TOTAL if n in mem]
    if outside:
        lines.append(f"(not in the total, RSS: {', '.join(outside)})")
    lines.append("")
    lines.append("targets (DESIGN.md, 2 cores):")
    for t in result["targets"]:
        lines.append(f"  [{'ok' if t['met'] else 'MISS'}] {t['what']}: {t['measured']}")
    return "\n".join(lines)
