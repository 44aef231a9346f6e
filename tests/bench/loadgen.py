"""A small closed-loop HTTP/1.1 load generator, run in its own process.

`python -m tests.bench.loadgen` reads a JSON spec (one line on stdin, or the first argument), opens
`concurrency` keep-alive connections to 127.0.0.1, sends one request at a time on each (raw asyncio
streams, no HTTP client library in the hot loop), warms up, then records every response that
completes inside the measurement window.

With `sse` set ("openai" or "chatbus") each response is read as a server-sent event stream,
chunk by chunk as it arrives: besides the total time it records the time to the first content token
(OpenAI: the first `data:` chunk with a non-empty `choices[0].delta.content`; chatbus: the first
`data:` frame whose `type` is `content`), measured from the moment the request is sent. A 2xx stream
without one counts as an error.

Protocol on stdout, one line each: `measure-start`, `measure-end`, then one JSON line with the
result. The spec keys are those of `Spec`; `body` is a `str.format` template with `{w}` (connection
number), `{n}` (request number on that connection) and `{tag}`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"  # never anything else


@dataclass
class Spec:
    port: int
    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    tag: str = "x"
    concurrency: int = 32
    warmup: float = 1.0
    duration: float = 5.0
    grace: float = 5.0
    connect_timeout: float = 5.0
    expect: int = 200
    sse: str | None = None  # "openai" | "chatbus": read the body as an event stream, time the first token


@dataclass
class Recorder:
    t_start: float = float("inf")
    t_end: float = float("inf")
    stop: bool = False
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    no_token: int = 0  # 2xx event streams that ended without a content token
    statuses: dict[int, int] = field(default_factory=dict)
    conn_errors: dict[str, int] = field(default_factory=dict)
    samples: dict[int, str] = field(default_factory=dict)
    warmup_requests: int = 0

    def in_window(self, t: float) -> bool:
        return self.t_start <= t <= self.t_end


class BadResponse(Exception):
    pass


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server-wants-close) of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    try:
        status = int(head[9:12])
    except ValueError as exc:
        raise BadResponse(f"bad status line {head[:40]!r}") from exc
    lower = head.lower()
    close = b"\r\nconnection: close" in lower
    i = lower.find(b"\r\ncontent-length:")
    if i >= 0:
        j = lower.index(b"\r\n", i + 17)
        length = int(lower[i + 17 : j])
        body = await reader.readexactly(length) if length else b""
    elif b"\r\ntransfer-encoding: chunked" in lower:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                    pass
                break
            parts.append((await reader.readexactly(size + 2))[:-2])
        body = b"".join(parts)
    else:
        body = b""
        if status >= 200 and status not in (204, 304):
            close = True  # a body delimited by the end of the connection: do not reuse it
    return status, body, close


# -- event streams -------------------------------------------------------------------------------


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def openai_token(data: bytes) -> bool:
    """An OpenAI chat-completion chunk carrying text (the role-only head chunk has `content: ""`)."""
    doc = _json_object(data) if data != b"[DONE]" else None
    choices = doc.get("choices") if doc else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return False
    delta = choices[0].get("delta")
    return isinstance(delta, dict) and bool(delta.get("content"))


def chatbus_token(data: bytes) -> bool:
    doc = _json_object(data)
    return doc is not None and doc.get("type") == "content"


TOKEN_DETECTORS: dict[str, Callable[[bytes], bool]] = {"openai": openai_token, "chatbus": chatbus_token}


class FirstToken:
    """Fed an event-stream body piece by piece, notes when the first content token arrives.

    Events end with a blank line (LF or CRLF line ends); an event's data is its `data:` lines joined.
    Once the token is found the rest of the body is only counted, not parsed."""

    __slots__ = ("at", "buffer", "head", "is_token")

    def __init__(self, is_token: Callable[[bytes], bool]) -> None:
        self.is_token = is_token
        self.at: float | None = None
        self.buffer = b""
        self.head = b""  # the start of the body, for error samples

    def feed(self, data: bytes) -> None:
        if len(self.head) < 600:
            self.head += data[: 600 - len(self.head)]
        if self.at is not None:
            return
        buf = self.buffer + data
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        start = 0
        while (end := buf.find(b"\n\n", start)) >= 0:
            event, start = buf[start:end], end + 2
            lines = [line[5:] for line in event.split(b"\n") if line.startswith(b"data:")]
            if lines and self.is_token(b"\n".join(x[1:] if x[:1] == b" " else x for x in lines)):
                self.at = time.perf_counter()
                self.buffer = b""
                return
        self.buffer = buf[start:]


async def read_stream_response(reader: asyncio.StreamReader, scan: FirstToken) -> tuple[int, bytes, bool, float | None]:
    """(status, start of the body, server-wants-close, perf_counter() at the first token or None) of one
    HTTP/1.1 response whose body is read as it arrives."""
    head = await reader.readuntil(b"\r\n\r\n")
    try:
        status = int(head[9:12])
    except ValueError as exc:
        raise BadResponse(f"bad status line {head[:40]!r}") from exc
    lower = head.lower()
    close = b"\r\nconnection: close" in lower
    i = lower.find(b"\r\ncontent-length:")
    if i >= 0:
        j = lower.index(b"\r\n", i + 17)
        length = int(lower[i + 17 : j])
        if length:
            scan.feed(await reader.readexactly(length))
    elif b"\r\ntransfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                    pass
                break
            scan.feed((await reader.readexactly(size + 2))[:-2])
    elif status >= 200 and status not in (204, 304):
        close = True  # a body delimited by the end of the connection
        while data := await reader.read(65536):
            scan.feed(data)
    return status, scan.head, close, scan.at


# -- the load ------------------------------------------------------------------------------------


def request_builder(spec: Spec) -> Any:
    lines = [f"{spec.method} {spec.path} HTTP/1.1", f"Host: {HOST}:{spec.port}"]
    lines += [f"{k}: {v}" for k, v in spec.headers.items()]
    if spec.body is None:
        fixed = ("\r\n".join(lines) + "\r\n\r\n").encode()
        return lambda w, n: fixed
    prefix = ("\r\n".join([*lines, "Content-Type: application/json"]) + "\r\n").encode()
    template, tag = spec.body, spec.tag

    def build(w: int, n: int) -> bytes:
        body = template.format(w=w, n=n, tag=tag).encode()
        return b"%sContent-Length: %d\r\n\r\n%s" % (prefix, len(body), body)

    return build


async def connection(
    w: int, spec: Spec, rec: Recorder, build: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    perf = time.perf_counter
    latencies, statuses, ttfts = rec.latencies, rec.statuses, rec.ttfts
    is_token = TOKEN_DETECTORS[spec.sse] if spec.sse else None
    t_first: float | None = None
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = (reader, writer)
    n = 0
    try:
        while not rec.stop:
            if conn is None:
                try:
                    conn = await asyncio.wait_for(asyncio.open_connection(HOST, spec.port), spec.connect_timeout)
                except (OSError, TimeoutError) as exc:
                    if rec.in_window(perf()):
                        rec.conn_errors[type(exc).__name__] = rec.conn_errors.get(type(exc).__name__, 0) + 1
                    await asyncio.sleep(0.05)
                    continue
            reader, writer = conn
            request = build(w, n)
            n += 1
            t0 = perf()
            try:
                writer.write(request)
                if is_token is None:
                    status, body, close = await read_response(reader)
                else:
                    status, body, close, t_first = await read_stream_response(reader, FirstToken(is_token))
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                BadResponse,
                ValueError,
            ) as exc:
                if rec.in_window(perf()):
                    rec.conn_errors[type(exc).__name__] = rec.conn_errors.get(type(exc).__name__, 0) + 1
                writer.close()
                conn = None
                continue
            t1 = perf()
            if rec.t_start <= t1 <= rec.t_end:
                statuses[status] = statuses.get(status, 0) + 1
                if 200 <= status < 300:
                    if is_token is None:
                        latencies.append(t1 - t0)
                    elif t_first is not None:
                        latencies.append(t1 - t0)
                        ttfts.append(t_first - t0)
                    else:
                        rec.no_token += 1
                        rec.samples.setdefault(status, body[:300].decode(errors="replace"))
                elif status not in rec.samples:
                    rec.samples[status] = body[:300].decode(errors="replace")
            elif t1 < rec.t_start:
                rec.warmup_requests += 1
            if close:
                writer.close()
                conn = None
    finally:
        if conn is not None:
            conn[1].close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))  # nearest rank
    return sorted_values[index]


def distribution_ms(values: list[float]) -> dict[str, float]:
    lat = sorted(values)
    ms = [round(percentile(lat, q) * 1000, 3) for q in (0.5, 0.9, 0.99, 0.999)]
    return {
        "p50": ms[0],
        "p90": ms[1],
        "p99": ms[2],
        "p999": ms[3],
        "mean": round(sum(lat) / len(lat) * 1000, 3) if lat else float("nan"),
        "min": round(lat[0] * 1000, 3) if lat else float("nan"),
        "max": round(lat[-1] * 1000, 3) if lat else float("nan"),
    }


def summarize(spec: Spec, rec: Recorder, window: float, cpu: float) -> dict[str, Any]:
    lat = rec.latencies
    errors = sum(c for s, c in rec.statuses.items() if not 200 <= s < 300) + sum(rec.conn_errors.values())
    errors += rec.no_token
    result: dict[str, Any] = {
        "requests": len(lat),
        "errors": errors,
        "statuses": {str(s): c for s, c in sorted(rec.statuses.items())},
        "unexpected_2xx": sum(c for s, c in rec.statuses.items() if 200 <= s < 300 and s != spec.expect),
        "connection_errors": rec.conn_errors,
        "error_samples": {str(s): b for s, b in rec.samples.items()},
        "window_s": round(window, 4),
        "rps": len(lat) / window if window > 0 else 0.0,
        "latency_ms": distribution_ms(lat),
        "warmup_requests": rec.warmup_requests,
        "loadgen_cpu_s": round(cpu, 3),
        "loadgen_cpu_pct": round(100 * cpu / window, 1) if window > 0 else 0.0,
    }
    if spec.sse:
        # latency_ms is then the time to the end of the stream (the full reply).
        result["ttft_ms"] = distribution_ms(rec.ttfts)
        result["no_first_token"] = rec.no_token
    return result


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run(spec: Spec) -> dict[str, Any]:
    rec = Recorder()
    build = request_builder(spec)
    conns = await asyncio.wait_for(
        asyncio.gather(*(asyncio.open_connection(HOST, spec.port) for _ in range(spec.concurrency))),
        spec.connect_timeout,
    )
    tasks = [asyncio.create_task(connection(w, spec, rec, build, r, wr)) for w, (r, wr) in enumerate(conns)]
    try:
        await asyncio.sleep(spec.warmup)
        rec.t_start = time.perf_counter()
        rec.t_end = rec.t_start + spec.duration
        cpu0 = time.process_time()
        emit("measure-start")
        await asyncio.sleep(spec.duration)
        rec.stop = True
        cpu = time.process_time() - cpu0
        emit("measure-end")
        window = spec.duration
        # Requests still in flight complete (not counted) or are cut after the grace period.
        _, pending = await asyncio.wait(tasks, timeout=spec.grace)
        for task in pending:
            task.cancel()
        late = len(pending)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
    result = summarize(spec, rec, window, cpu)
    result["stuck_connections_at_end"] = late
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = Spec(**json.loads(argv[0] if argv else sys.stdin.readline()))
    runner: Any = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # optional: plain asyncio works too, with more CPU per request
        pass
    result = runner(run(spec))
    result["event_loop"] = "asyncio" if runner is asyncio.run else "uvloop"
    emit(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
