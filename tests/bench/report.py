"""The benchmark's verdict over a finished run: the chat overhead, the targets, and the printed table.
Pure functions of the result document (the JSON that `run` writes)."""

from __future__ import annotations

import math
from typing import Any

# Issue 13's targets (DESIGN.md "Performance", a 2-core machine).
TARGET_READ_RATIO = 0.5  # GET /api/presets with the rate limiter on, over the bare Litestar route
TARGET_WRITE_RPS = 2000.0
TARGET_WRITE_P99_MS = 25.0
TARGET_IDLE_RSS_MIB = 250.0
TARGET_CHAT_ADDED_MS = 3.0  # p50, to the first token and to the full reply, at concurrency 1
# Chat turns/s (POST /api/chat, full reply) at c=32 measured when issue 13 was filed; the target is a multiple.
BASELINE_CHAT_TURNS_PER_S = 236.0
TARGET_CHAT_TURNS_FACTOR = 2.0
TARGET_CHAT_LOADED_FIRST_TOKEN_MS = 30.0  # added first-token p50 at c=32
TARGET_PIPELINE_FACTOR = 0.8  # OneBot messages/s to replies over chat turns/s at the same concurrency
TARGET_REPLAY_EVENTS_PER_S = 50_000.0
TARGET_WS_CLIENTS = 1000
TARGET_WS_P99_MS = 250.0
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


def _target(what: str, measured: str, met: bool) -> dict[str, Any]:
    return {"what": what, "measured": measured, "met": met}


def _missing(what: str, why: str = "not measured in this run") -> dict[str, Any]:
    return _target(what, why, False)


def _errors(n: int) -> str:
    return f" ({n} errors)" if n else ""


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of issue 13, in its order, with the figure measured; one that this run did not measure
    is a MISS that says so (a target is never met by default)."""
    by_key = {s["key"]: s for s in result["scenarios"]}
    overhead = result.get("chat_overhead", {})
    loaded = int(result.get("config", {}).get("concurrency", 32))
    out = [*_chat_targets(by_key, overhead, loaded), *_pipeline_targets(result, by_key)]

    write = by_key.get("POST /api/presets")
    what = f"writes >= {TARGET_WRITE_RPS:,.0f}/s at {loaded} clients, fsync on"
    if write is None:
        out.append(_missing(what))
        out.append(_missing(f"write p99 <= {TARGET_WRITE_P99_MS:g} ms"))
    else:
        out.append(
            _target(
                what,
                f"{write['rps']:,.0f}/s{_errors(write['errors'])}",
                write["rps"] >= TARGET_WRITE_RPS and write["errors"] == 0,
            )
        )
        p99 = write["latency_ms"]["p99"]
        out.append(_target(f"write p99 <= {TARGET_WRITE_P99_MS:g} ms", f"{p99:.2f} ms", p99 <= TARGET_WRITE_P99_MS))

    bare, read = by_key.get("GET /bare"), by_key.get("GET /api/presets")
    what = f"reads (GET /api/presets, limiter on) >= {TARGET_READ_RATIO}x bare Litestar"
    if bare is None or read is None or not bare["rps"]:
        out.append(_missing(what))
    else:
        ratio = read["rps"] / bare["rps"]
        out.append(
            _target(what, f"{ratio:.2f}x ({read['rps']:,.0f} vs {bare['rps']:,.0f} req/s)", ratio >= TARGET_READ_RATIO)
        )

    replay = result.get("replay")
    what = f"replay >= {TARGET_REPLAY_EVENTS_PER_S:,.0f} events/s"
    if not replay:
        out.append(_missing(what))
    else:
        rate = replay["events_per_s"]
        out.append(
            _target(what, f"{rate:,.0f} events/s ({replay['events']:,} events)", rate >= TARGET_REPLAY_EVENTS_PER_S)
        )

    ws = result.get("ws_fanout")
    what = f"{TARGET_WS_CLIENTS:,} WebSocket clients receive an event, p99 <= {TARGET_WS_P99_MS:g} ms"
    if not ws:
        out.append(_missing(what))
    else:
        p50, p99 = ws["latency_ms"]["p50"], ws["latency_ms"]["p99"]
        whole = ws["clients"] >= TARGET_WS_CLIENTS and ws["missing"] == 0
        out.append(
            _target(
                what,
                f"p99 {p99:.1f} ms, p50 {p50:.1f} ms over {ws['clients']:,} clients x {ws['events']} events"
                + (f" ({ws['missing']:,} deliveries missing)" if ws["missing"] else ""),
                whole and p99 <= TARGET_WS_P99_MS,
            )
        )

    what = f"idle RSS of all processes (NATS, Postgres included) <= {TARGET_IDLE_RSS_MIB:g} MiB"
    rss = result.get("idle_rss_total_mib")
    out.append(_missing(what) if rss is None else _target(what, f"{rss:.1f} MiB", rss <= TARGET_IDLE_RSS_MIB))
    return out


def _chat_targets(by_key: dict[str, Any], overhead: dict[str, Any], loaded: int) -> list[dict[str, Any]]:
    out = []
    what = f"chat c=1 adds <= {TARGET_CHAT_ADDED_MS:g} ms p50 to the first token and to the full reply"
    single = overhead.get("c=1", {})
    if "full_reply" in single and "first_token" in single:
        reply, first = single["full_reply"], single["first_token"]
        added = (reply["added_ms"]["p50"], first["added_ms"]["p50"])
        errors = reply["errors"] + first["errors"]
        out.append(
            _target(
                what,
                f"first token +{added[1]:.2f} ms, full reply +{added[0]:.2f} ms{_errors(errors)}",
                all(a <= TARGET_CHAT_ADDED_MS for a in added) and errors == 0,
            )
        )
    else:
        out.append(_missing(what))

    goal = BASELINE_CHAT_TURNS_PER_S * TARGET_CHAT_TURNS_FACTOR
    what = (
        f"chat c={loaded} turns/s >= {TARGET_CHAT_TURNS_FACTOR:g}x {BASELINE_CHAT_TURNS_PER_S:g} "
        f"(issue baseline) = {goal:g}"
    )
    turns = by_key.get(f"chat-chatbus-json-c{loaded}")
    if turns is None:
        out.append(_missing(what))
    else:
        out.append(
            _target(
                what,
                f"{turns['rps']:,.0f} turns/s ({turns['rps'] / BASELINE_CHAT_TURNS_PER_S:.2f}x)"
                + _errors(turns["errors"]),
                turns["rps"] >= goal and turns["errors"] == 0,
            )
        )
    what = f"chat c={loaded} added first-token p50 <= {TARGET_CHAT_LOADED_FIRST_TOKEN_MS:g} ms"
    first = overhead.get(f"c={loaded}", {}).get("first_token")
    if first is None:
        out.append(_missing(what))
    else:
        added = first["added_ms"]["p50"]
        out.append(
            _target(
                what,
                f"+{added:.2f} ms{_errors(first['errors'])}",
                added <= TARGET_CHAT_LOADED_FIRST_TOKEN_MS and first["errors"] == 0,
            )
        )
    return out


def _pipeline_targets(result: dict[str, Any], by_key: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    levels = {level["conversations"]: level for level in result.get("pipeline", [])}
    loaded = int(result.get("config", {}).get("concurrency", 32))
    for c in dict.fromkeys((1, loaded)):
        plural = "s" if c > 1 else ""
        what = f"OneBot pipeline, {c} conversation{plural}: messages/s >= {TARGET_PIPELINE_FACTOR:g}x chat turns/s"
        level, turns = levels.get(c), by_key.get(f"chat-chatbus-json-c{c}")
        if level is None or turns is None:
            out.append(_missing(what))
            continue
        ratio = level["per_second"] / turns["rps"] if turns["rps"] else 0.0
        out.append(
            _target(
                what,
                f"{level['per_second']:,.1f}/s = {ratio:.2f}x {turns['rps']:,.1f} turns/s; "
                f"reply p50 {level['latency_ms']['p50']:.2f} ms, p99 {level['latency_ms']['p99']:.2f} ms"
                + _errors(level["errors"]),
                ratio >= TARGET_PIPELINE_FACTOR and level["errors"] == 0,
            )
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
    lines += _sections(result)
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
    lines.append('targets (issue 13, DESIGN.md "Performance"; a shared machine makes every figure noisy):')
    for t in result["targets"]:
        lines.append(f"  [{'MET' if t['met'] else 'MISS'}] {t['what']}: {t['measured']}")
    met = sum(t["met"] for t in result["targets"])
    lines.append(f"  {met} of {len(result['targets'])} targets met")
    return "\n".join(lines)


def _sections(result: dict[str, Any]) -> list[str]:
    """The OneBot pipeline, replay and WebSocket fan-out measurements, when the run has them."""
    lines: list[str] = []
    if result.get("pipeline"):
        lines += [
            "",
            "OneBot pipeline: fake NapCat (own process) -> WS /onebot/v11/ws -> edge -> worker -> instant LLM -> "
            "send_private_msg back; latency = message sent -> reply action received",
        ]
        rows = [
            [
                str(p["conversations"]),
                str(p["replies"]),
                str(p["errors"]),
                f"{p['per_second']:,.1f}",
                f"{p['latency_ms']['p50']:.2f}",
                f"{p['latency_ms']['p99']:.2f}",
            ]
            for p in result["pipeline"]
        ]
        lines.append(render_table(["conversations", "replies", "errors", "msgs/s", "p50 ms", "p99 ms"], rows))
        for p in result["pipeline"]:
            cpu = ", ".join(f"{k} {v:.0f}%" for k, v in p.get("server_cpu_pct", {}).items() if v >= 1)
            lines.append(f"  pipeline c={p['conversations']}: CPU (% of a core) bot {p['loadgen_cpu_pct']:.0f}%, {cpu}")
    replay = result.get("replay")
    if replay:
        lines += [
            "",
            f"replay (`chatbus replay`: bus.projections.rebuild, batch {replay['batch']}): {replay['events']:,} events "
            f"in {replay['seconds']:.2f}s = {replay['events_per_s']:,.0f} events/s ({replay['source']})",
        ]
    ws = result.get("ws_fanout")
    if ws:
        q = ws["latency_ms"]
        lines += [
            "",
            f"WebSocket fan-out: {ws['clients']:,} clients on WS /ws ({ws['processes']} client processes), "
            f"{ws['events']} events (POST /api/presets, one at a time); HTTP 2xx -> frame received: "
            f"p50 {q['p50']:.1f} ms, p90 {q['p90']:.1f} ms, p99 {q['p99']:.1f} ms, max {q['max']:.1f} ms; "
            f"{ws['received']:,} of {ws['expected']:,} deliveries"
            + (f", {ws['missing']:,} missing" if ws["missing"] else ""),
        ]
    return lines
