"""The benchmark (DESIGN.md "Performance"): the HTTP ceiling, reads, writes and chat turns, side by side.

    python -m tests.bench.run [--duration S] [--warmup S] [--concurrency N] [--out DIR]

Starts an embedded NATS and a durable embedded Postgres (fsync on: real commit latency), bootstraps
them, runs `chatbus edge`, `chatbus worker --relay` (the layout `chatbus up` runs), a bare Litestar
app and a local instant LLM (`FakeProvider("openai")`, `tests.bench.fake_llm`) as separate processes, logs
in, creates one channel pointing at the LLM, measures the idle RSS, then drives each scenario with a load generator in
its own process: `GET /bare` (the ceiling), `GET /api/presets` (a projection page), `POST /api/presets`
(the full command path: edge -> NATS -> worker -> Postgres), then chat turns at concurrency 1 and N,
each pair back to back: `POST /api/chat` against the LLM's own `POST /v1/chat/completions` (the full
reply), and `POST /api/chat/stream` against the LLM's stream (time to first token). Then, against the
same processes: the OneBot pipeline at 1 and N conversations (`tests.bench.onebot --loadgen`: a fake
NapCat in its own process on `WS /onebot/v11/ws`), the fan-out of events to 1,000 `WS /ws` clients
(`tests.bench.wsfan`), and replay speed in a database of its own (`tests.bench.replay`). Prints a table,
the chat overhead (chatbus minus direct) and every target of issue 13 with MET or MISS
(`tests.bench.report.targets`), and writes JSON. Everything listens on 127.0.0.1 only, and every
process is torn down on exit, error, Ctrl-C or the global timeout.

    python -m tests.bench.run [--skip pipeline,ws,replay] [--replay-events N] [--ws-clients N]"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from chatbus.devstack import EmbeddedNats, EmbeddedPostgres, free_port
from tests.bench import replay, wsfan
from tests.bench.backend import (
    ADMIN_PASSWORD,
    MIB,
    bootstrap,
    chatbus_env,
    filesystem_of,
    fsync_probe,
    machine_info,
    set_rate_limit,
)
from tests.bench.common import HOST, REPO, busy_total, http, install_deadline, step, stop_process, tail, tree
from tests.bench.loadgen import TOKEN_DETECTORS, FirstToken
from tests.bench.onebot import MESSAGE_IDS_PER_LEVEL, PLATFORM, platform_body
from tests.bench.report import NOT_IN_TOTAL, chat_overhead, label, report, targets
from tests.bench.scenarios import CHAT_CHANNEL_ID, Scenario, channel_body, plan

STARTUP_TIMEOUT = 60.0
LOADGEN_GRACE = 5.0
CHATBUS_ROLES = ("edge", "worker", "relay")
PHASES = ("pipeline", "ws", "replay")  # measured after the load scenarios, in this order
WS_CLIENT_PROCESSES = 2
LLM = "FakeProvider('openai'): echoes the last user message at once, own process (uvloop)"


class BenchTimeout(Exception):
    pass


class BenchError(Exception):
    pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path | None = None
    nats: EmbeddedNats | None = None
    pg: EmbeddedPostgres | None = None
    children: dict[str, Child] = field(default_factory=dict)
    loadgen: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        self.workdir = Path(tempfile.mkdtemp(prefix="chatbus-bench-"))
        (self.workdir / "logs").mkdir()
        step("embedded NATS")
        self.nats = EmbeddedNats(self.workdir / "nats")
        nats_url = self.nats.start()
        step("embedded Postgres (durable=True: fsync on)")
        self.pg = EmbeddedPostgres(self.workdir / "postgres", durable=True)
        dsn = self.pg.start()
        step("bootstrap (migrations, streams, system presets, admin)")
        pg_settings = asyncio.run(bootstrap(dsn, nats_url))
        step("fsync probe on the data directory's file system")
        fsync = fsync_probe(self.workdir / "fsync-probe")

        env = chatbus_env(nats_url, dsn)
        edge_port, bare_port, llm_port = free_port(), free_port(), free_port()
        py = sys.executable
        step("edge, worker (with the relay, as in chatbus up), the bare app and the fake LLM as separate processes")
        self.spawn("edge", [py, "-m", "chatbus", "edge", "--host", HOST, "--port", str(edge_port)], env)
        self.spawn("worker", [py, "-m", "chatbus", "worker", "--relay"], env)  # the layout `chatbus up` runs
        self.spawn("bare", [py, "-m", "tests.bench.bare_app", "--host", HOST, "--port", str(bare_port)], env)
        self.spawn("llm", [py, "-m", "tests.bench.fake_llm", "--host", HOST, "--port", str(llm_port)], env)
        self.wait_http(bare_port, "/bare", "bare")
        self.wait_http(llm_port, "/v1/models", "fake LLM")
        self.wait_http(edge_port, "/health", "edge")
        step("login")
        token = self.login(edge_port)
        step(f"channel '{CHAT_CHANNEL_ID}' -> the fake LLM")
        llm_base_url = f"http://{HOST}:{llm_port}/v1"
        status, body = http(edge_port, "POST", "/api/channels", channel_body(llm_base_url), token=token, timeout=15.0)
        if status != 201:
            raise BenchError(f"creating the channel: HTTP {status}: {body}")
        return {
            "nats_url": nats_url,
            "dsn": dsn,
            "edge_port": edge_port,
            "bare_port": bare_port,
            "llm_port": llm_port,
            "llm_base_url": llm_base_url,
            "token": token,
            "postgres_settings": pg_settings,
            "data_dir_fs": filesystem_of(self.workdir),
            "fsync_probe": fsync,
        }

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        assert self.workdir is not None
        log = self.workdir / "logs" / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.children[name] = Child(name, proc, log)

    def check_alive(self) -> None:
        for child in self.children.values():
            if child.proc.poll() is not None:
                raise BenchError(f"{child.name} exited with code {child.proc.returncode}\n{tail(child.log)}")

    def wait_http(self, port: int, path: str, what: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                status, _ = http(port, "GET", path, timeout=2.0)
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise BenchError(f"{what} did not answer GET {path} within {STARTUP_TIMEOUT:.0f}s ({last})")

    def login(self, port: int) -> str:
        # The edge can be up before the worker serves `auth`: retry until the command is answered.
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            self.check_alive()
            status, body = http(port, "POST", "/api/auth/login", {"password": ADMIN_PASSWORD}, timeout=15.0)
            if status == 200:
                return str(body["data"]["token"])
            last = f"HTTP {status}: {body}"
            time.sleep(0.25)
        raise BenchError(f"login failed: {last}")

    def teardown(self) -> None:
        if self.loadgen is not None:
            stop_process(self.loadgen, "loadgen")
            self.loadgen = None
        # The HTTP servers first (they hold bus and database connections), then the back end.
        for name in ("edge", "bare", "worker", "relay", "llm"):
            child = self.children.pop(name, None)
            if child is not None:
                stop_process(child.proc, name)
        for name, child in list(self.children.items()):
            stop_process(child.proc, name)
        self.children.clear()
        for server in (self.nats, self.pg):
            if server is not None:
                try:
                    server.stop()
                except Exception as exc:
                    print(f"  ! stopping {type(server).__name__}: {exc!r}; killing it", file=sys.stderr)
                    with contextlib.suppress(Exception):
                        server.kill()
        self.nats = self.pg = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- measurements ----------------------------------------------------------------------------

    def roots(self) -> dict[str, int]:
        """The process-tree roots we account for: chatbus roles, NATS, the postmaster (and the bare app and
        the fake LLM, which are measured but not chatbus)."""
        roots = {
            name: self.children[name].proc.pid for name in (*CHATBUS_ROLES, *NOT_IN_TOTAL) if name in self.children
        }
        if self.nats is not None and self.nats.proc is not None:
            roots["nats"] = self.nats.proc.pid
        if self.pg is not None and self.pg.proc is not None:
            roots["postgres"] = self.pg.proc.pid
        return roots

    def memory(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, pid in self.roots().items():
            rss = pss = 0
            procs = tree(pid)
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    info = p.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", 0)
            out[name] = {"rss_mib": rss / MIB, "pss_mib": pss / MIB, "processes": len(procs)}
        return out

    def cpu_seconds(self) -> dict[str, float]:
        out = {}
        for name, pid in self.roots().items():
            total = 0.0
            for p in tree(pid):
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
            out[name] = total
        return out

    def probe(self, scenario: Scenario, token: str, *, wait: float = 0.0) -> None:
        """One request of the scenario before the load: fail fast with the server's answer (retried for
        up to `wait` seconds, for what becomes ready in the background)."""
        deadline = time.monotonic() + wait
        while True:
            problem = self.probe_once(scenario, token)
            if problem is None:
                return
            if time.monotonic() >= deadline:
                raise BenchError(f"probe {label(vars(scenario))}: {problem}")
            self.check_alive()
            time.sleep(0.25)

    def probe_once(self, scenario: Scenario, token: str) -> str | None:
        body = json.loads(scenario.body.format(w="probe", n=0, tag=uuid.uuid4().hex[:6])) if scenario.body else None
        status, answer = http(
            scenario.port,
            scenario.method,
            scenario.path,
            body,
            token=token if scenario.auth else None,
            headers=scenario.headers,
            raw=scenario.sse is not None,
            timeout=15.0,
        )
        if status != scenario.expect:
            return f"expected {scenario.expect}, got {status}: {answer!r:.300}"
        if scenario.sse is not None:
            scan = FirstToken(TOKEN_DETECTORS[scenario.sse])
            scan.feed(answer)
            if scan.at is None:
                return f"no content token in the stream: {answer!r:.300}"
        elif scenario.check is not None and not scenario.check(answer):
            return f"unexpected answer: {answer!r:.300}"
        return None

    def run_scenario(self, scenario: Scenario, token: str, tag: str) -> dict[str, Any]:
        return self.run_load(["tests.bench.loadgen"], self.scenario_spec(scenario, token, tag), label(vars(scenario)))

    def scenario_spec(self, scenario: Scenario, token: str, tag: str) -> dict[str, Any]:
        """The load generator's spec (`tests.bench.loadgen.Spec`) for one scenario."""
        args = self.args
        return {
            "port": scenario.port,
            "path": scenario.path,
            "method": scenario.method,
            "body": scenario.body,
            "headers": {**scenario.headers, **({"Authorization": f"Bearer {token}"} if scenario.auth else {})},
            "tag": tag,
            "concurrency": scenario.concurrency or args.concurrency,
            "sse": scenario.sse,
            "warmup": args.warmup,
            "duration": args.duration,
            "grace": LOADGEN_GRACE,
            "expect": scenario.expect,
        }

    def run_load(self, module: list[str], spec: dict[str, Any], what: str) -> dict[str, Any]:
        """Runs a load generator (`python -m *module`, the spec on stdin) and adds to its result the CPU
        each process tree used in its measurement window (`measure-start` .. `measure-end`)."""
        self.loadgen = subprocess.Popen(
            [sys.executable, "-m", *module],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.loadgen.stdin is not None and self.loadgen.stdout is not None
        self.loadgen.stdin.write(json.dumps(spec).encode() + b"\n")  # not argv: keeps the token out of `ps`
        self.loadgen.stdin.close()
        cpu0 = cpu1 = None
        sys0 = sys1 = None
        result: dict[str, Any] | None = None
        for raw in self.loadgen.stdout:  # bounded by the loadgen's own durations and the global alarm
            line = raw.decode().strip()
            if line == "measure-start":
                cpu0, sys0 = self.cpu_seconds(), psutil.cpu_times()
            elif line == "measure-end":
                cpu1, sys1 = self.cpu_seconds(), psutil.cpu_times()
            elif line.startswith("{"):
                result = json.loads(line)
        code = self.loadgen.wait(LOADGEN_GRACE + 10)
        self.loadgen = None
        if code != 0 or result is None:
            raise BenchError(f"load generator for {what} failed (exit code {code})")
        self.check_alive()
        if cpu0 and cpu1 and sys0 and sys1:
            window = result["window_s"]
            result["server_cpu_pct"] = {k: round(100 * (cpu1[k] - cpu0.get(k, 0.0)) / window, 1) for k in cpu1}
            (busy0, total0), (busy1, total1) = busy_total(sys0), busy_total(sys1)
            result["machine_busy_pct"] = round(100 * (busy1 - busy0) / max(total1 - total0, 1e-9), 1)
            # CPU burnt by processes that are not ours (other jobs on the machine skew the numbers).
            ours = sum(cpu1[k] - cpu0.get(k, 0.0) for k in cpu1) + result["loadgen_cpu_s"]
            result["other_cpu_pct"] = round(max(0.0, 100 * (busy1 - busy0 - ours) / window), 1)
        return result


# -- entry point ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per scenario (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per scenario (default 1)")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--out", default="bench-results", help="directory for the JSON result (default bench-results)")
    parser.add_argument("--replay-events", type=int, default=60_000, help="events replayed (default 60,000)")
    parser.add_argument("--ws-clients", type=int, default=1000, help="WebSocket clients (default 1,000)")
    parser.add_argument("--ws-events", type=int, default=20, help="events fanned out to them (default 20)")
    parser.add_argument(
        "--skip",
        type=lambda v: [x for x in v.split(",") if x],
        default=[],
        help=f"comma-separated phases to leave out: {','.join(PHASES)} (their targets show as not measured)",
    )
    args = parser.parse_args(argv)
    if unknown := set(args.skip) - set(PHASES):
        parser.error(f"unknown phases to skip: {sorted(unknown)}")
    if not (1 <= args.replay_events <= 2_000_000 and 1 <= args.ws_clients <= 5000 and 1 <= args.ws_events <= 100):
        parser.error("need 1 <= replay-events <= 2,000,000, 1 <= ws-clients <= 5,000, 1 <= ws-events <= 100")
    if not (0 < args.duration <= 600 and 0 <= args.warmup <= 120 and 0 < args.concurrency <= 2000):
        parser.error("need 0 < duration <= 600, 0 <= warmup <= 120, 0 < concurrency <= 2000")
    return args


def measure_pipeline(bench: Bench, setup: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    """The OneBot pipeline against the same processes: a fake NapCat in its own process sends private
    messages over `WS /onebot/v11/ws`, each conversation sending its next one when the reply comes."""
    args, port, token = bench.args, setup["edge_port"], setup["token"]
    step(f"OneBot platform '{PLATFORM}' for the fake NapCat")
    status, body = http(port, "POST", "/api/platforms", platform_body(), token=token, timeout=15.0)
    if status != 201:
        raise BenchError(f"creating the OneBot platform: HTTP {status}: {body}")
    out = []
    for level, conversations in enumerate(dict.fromkeys((1, args.concurrency))):
        step(f"OneBot pipeline: {args.warmup:g}s warm-up + {args.duration:g}s, {conversations} conversations")
        spec = {
            "edge_url": f"http://{HOST}:{port}",
            "conversations": conversations,
            "warmup": args.warmup,
            "duration": args.duration,
            "grace": LOADGEN_GRACE,
            "tag": tag,
            "first_message_id": MESSAGE_IDS_PER_LEVEL * (level + 1),  # ids chatbus has not seen (its dedup)
        }
        out.append(bench.run_load(["tests.bench.onebot", "--loadgen"], spec, f"pipeline c={conversations}"))
    return out


def measure_ws(bench: Bench, setup: dict[str, Any], tag: str) -> dict[str, Any]:
    args, port, token = bench.args, setup["edge_port"], setup["token"]
    step(f"WebSocket fan-out: {args.ws_clients:,} clients on WS /ws, {args.ws_events} events")

    def publish(i: int) -> None:
        body = {"id": f"ws-{tag}-{i}", "name": f"fan-out {i}"}
        status, answer = http(port, "POST", "/api/presets", body, token=token, timeout=15.0)
        if status != 201:
            raise BenchError(f"fan-out event {i}: HTTP {status}: {answer}")

    url = f"ws://{HOST}:{port}/ws"
    processes = WS_CLIENT_PROCESSES if args.ws_clients >= WS_CLIENT_PROCESSES else 1
    result = wsfan.measure(
        url, token, tag, publish, clients=args.ws_clients, events=args.ws_events, processes=processes
    )
    bench.check_alive()
    return result


def measure_replay(bench: Bench, setup: dict[str, Any]) -> dict[str, Any]:
    assert bench.pg is not None
    events = bench.args.replay_events
    step(f"replay: {events:,} events (the run's, then seeded presets) in a database of their own")
    return asyncio.run(replay.measure(bench.pg.dsn("postgres"), setup["dsn"], bench.pg.dsn(replay.DATABASE), events))


def measure(bench: Bench) -> dict[str, Any]:
    args = bench.args
    started = time.monotonic()
    setup = bench.start()
    token = setup["token"]
    scenarios = plan(setup["edge_port"], setup["bare_port"], setup["llm_port"], args.concurrency)
    for scenario in scenarios:
        # The first chat turn may come before the worker sees the new channel: give it a moment.
        bench.probe(scenario, token, wait=15.0 if scenario.via == "chatbus" else 0.0)
    time.sleep(2.0)  # let start-up and the probes settle before the idle snapshot
    bench.check_alive()
    memory = bench.memory()
    tag = uuid.uuid4().hex[:6]
    results = []
    for scenario in scenarios:
        asyncio.run(set_rate_limit(setup["dsn"], scenario.rate_limit))
        time.sleep(0.5)  # the edges pick the change up from the relayed event
        concurrency = scenario.concurrency or args.concurrency
        step(f"{label(vars(scenario))}: {args.warmup:g}s warm-up + {args.duration:g}s, {concurrency} connections")
        result = bench.run_scenario(scenario, token, tag)
        results.append(
            {
                "name": scenario.name,
                "key": scenario.key,
                "group": scenario.group,
                "via": scenario.via or None,
                "concurrency": concurrency,
                "method": scenario.method,
                "path": scenario.path,
                "stream": scenario.sse is not None,
                "baseline": scenario.baseline,
                "expected_status": scenario.expect,
                **result,
            }
        )
    skip = set(args.skip)
    pipeline = [] if "pipeline" in skip else measure_pipeline(bench, setup, tag)
    ws = None if "ws" in skip else measure_ws(bench, setup, tag)
    replayed = None if "replay" in skip else measure_replay(bench, setup)
    accounted = {n: m for n, m in memory.items() if n not in NOT_IN_TOTAL}
    out: dict[str, Any] = {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": 0.0,
        "machine": machine_info(),
        "config": {
            "duration": args.duration,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "postgres_durable": True,
            "host": HOST,
            "loadgen": "raw asyncio streams, own process",
            "llm": LLM,
            "llm_base_url": setup["llm_base_url"],
        },
        "postgres": setup["postgres_settings"],
        "data_dir_fs": setup["data_dir_fs"],
        "fsync_probe": setup["fsync_probe"],
        "idle_memory": memory,
        "idle_rss_total_mib": sum(m["rss_mib"] for m in accounted.values()),
        "idle_pss_total_mib": sum(m["pss_mib"] for m in accounted.values()),
        "idle_memory_note": "after start-up, login and one probe request per scenario, 2 s settle; "
        "total = edge + worker (with the relay) + nats + postgres (bare app and fake LLM excluded)",
        "scenarios": results,
        "pipeline": pipeline,
        "ws_fanout": ws,
        "replay": replayed,
        "chat_overhead": chat_overhead(results),
        "chat_overhead_note": "chatbus minus direct, quantile by quantile, per concurrency; full_reply: "
        "POST /api/chat vs POST /v1/chat/completions; first_token (time to the first content token) and "
        "full_stream: POST /api/chat/stream vs the streamed POST /v1/chat/completions",
    }
    base = next(r for r in results if r["baseline"])
    for s in results:
        s["ratio_to_bare"] = s["rps"] / base["rps"] if base["rps"] and s["group"] == "http" else None
    out["targets"] = targets(out)
    out["wall_s"] = round(time.monotonic() - started, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the in-process bootstrap's bus warnings are noise here
    # Start-up (each wait is bounded by STARTUP_TIMEOUT), then per scenario: the config change, the load
    # generator's start, warm-up, window and grace; a safety net, not an estimate.
    scenarios = len(plan(0, 0, 0, args.concurrency))
    scenarios += 2  # the OneBot pipeline's two levels
    budget = int(STARTUP_TIMEOUT * 3 + scenarios * (args.warmup + args.duration + LOADGEN_GRACE + 5) + 30)
    budget += int(120 + args.ws_events * wsfan.EVENT_GAP + wsfan.SETTLE)  # fan-out: 1,000 handshakes and more
    budget += 60 + args.replay_events // 1000  # replay: seeding and the rebuild, at >= 1,000 events/s
    wsfan.raise_fd_limit()  # the edge (inherits it) holds every fan-out client's socket

    install_deadline(budget, BenchTimeout)
    bench = Bench(args)
    code = 1
    try:
        result = measure(bench)
        code = 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    except (BenchTimeout, BenchError) as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        for child in bench.children.values():
            print(f"--- {child.name} log (tail) ---\n{tail(child.log, 15)}", file=sys.stderr)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # teardown is bounded; do not cut it short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        step("teardown")
        bench.teardown()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if code != 0:
        return code
    print(report(result))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = result["timestamp"].replace("-", "").replace(":", "")
    path = out_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
