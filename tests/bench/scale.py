"""Scale-out (issue 13, item 2): the core scenarios against N edges and M workers on one NATS and one
Postgres, each a process of its own as in compose.yaml, and the throughput of each layout against 1x1.

    python -m tests.bench.scale [--layouts 1x1,2x2] [--duration S] [--warmup S] [--concurrency N]

A layout `NxM` gets a fresh embedded NATS and durable Postgres (fsync on), `chatbus edge` N times (a port
each), `chatbus worker` M times, one of every other role of `tests.bench.run.CHATBUS_ROLES` (the relay),
and the instant fake LLM (`chatbus edge` has no SO_REUSEPORT option today, hence a port
each). The load grows with the layout: one load generator process per edge, each with
`--concurrency` keep-alive connections to its own edge. Scenarios: `GET /api/presets` (limiter on),
`POST /api/presets` and chat turns (`POST /api/chat`, full reply). Throughput is summed over the load
generators; p50/p99 are the worst load generator's. The OneBot pipeline is left out (one bot connection
per platform reaches one edge only). A machine with fewer cores than processes measures contention, not
scale-out: the printed header says how many CPUs there were."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatbus.devstack import EmbeddedNats, EmbeddedPostgres, free_port
from tests.bench.backend import bootstrap, chatbus_env, machine_info, set_rate_limit
from tests.bench.common import HOST, REPO, http, install_deadline, step, stop_process, tail
from tests.bench.report import render_table
from tests.bench.run import CHATBUS_ROLES, LOADGEN_GRACE, STARTUP_TIMEOUT, Bench, BenchError, BenchTimeout
from tests.bench.scenarios import Scenario, channel_body, chat_scenarios, http_scenarios

SCENARIO_KEYS = ("GET /api/presets", "POST /api/presets", "chat-chatbus-json-c{c}")


@dataclass(frozen=True)
class Layout:
    edges: int
    workers: int

    @classmethod
    def parse(cls, text: str) -> Layout:
        edges, _, workers = text.partition("x")
        layout = cls(int(edges), int(workers))
        if not (1 <= layout.edges <= 32 and 1 <= layout.workers <= 32):
            raise ValueError(f"layout {text}: 1..32 edges and workers")
        return layout

    def __str__(self) -> str:
        return f"{self.edges}x{self.workers}"


@dataclass
class ScaleBench(Bench):
    layout: Layout = Layout(1, 1)
    edge_ports: list[int] = field(default_factory=list)
    loadgens: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> dict[str, Any]:
        self.workdir = Path(tempfile.mkdtemp(prefix="chatbus-scale-"))
        (self.workdir / "logs").mkdir()
        self.nats = EmbeddedNats(self.workdir / "nats")
        nats_url = self.nats.start()
        # 8 edges and 8 workers hold more connections than the embedded default allows.
        self.pg = EmbeddedPostgres(self.workdir / "postgres", durable=True, max_connections=300)
        dsn = self.pg.start()
        asyncio.run(bootstrap(dsn, nats_url))
        asyncio.run(set_rate_limit(dsn, 1_000_000))  # the limiter on, counting every request
        env = chatbus_env(nats_url, dsn)
        py = sys.executable
        edges, workers = self.layout.edges, self.layout.workers
        step(f"layout {self.layout}: {edges} edge(s), {workers} worker(s), roles {', '.join(CHATBUS_ROLES)}")
        for role in CHATBUS_ROLES:
            if role == "edge":
                for i in range(self.layout.edges):
                    port = free_port()
                    self.edge_ports.append(port)
                    self.spawn(f"edge-{i}", [py, "-m", "chatbus", "edge", "--host", HOST, "--port", str(port)], env)
            elif role == "worker":
                for i in range(self.layout.workers):
                    self.spawn(f"worker-{i}", [py, "-m", "chatbus", "worker"], env)
            else:
                self.spawn(role, [py, "-m", "chatbus", role], env)
        llm_port = free_port()
        self.spawn("llm", [py, "-m", "tests.bench.fake_llm", "--host", HOST, "--port", str(llm_port)], env)
        self.wait_http(llm_port, "/v1/models", "fake LLM")
        for i, port in enumerate(self.edge_ports):
            self.wait_http(port, "/health", f"edge-{i}")
        token = self.login(self.edge_ports[0])
        status, body = http(
            self.edge_ports[0], "POST", "/api/channels", channel_body(f"http://{HOST}:{llm_port}/v1"), token=token
        )
        if status != 201:
            raise BenchError(f"creating the channel: HTTP {status}: {body}")
        return {"token": token, "llm_port": llm_port, "dsn": dsn}

    def roots(self) -> dict[str, int]:
        roots = {name: child.proc.pid for name, child in self.children.items() if name != "llm"}
        if self.nats is not None and self.nats.proc is not None:
            roots["nats"] = self.nats.proc.pid
        if self.pg is not None and self.pg.proc is not None:
            roots["postgres"] = self.pg.proc.pid
        return roots

    def teardown(self) -> None:
        for proc in self.loadgens:
            stop_process(proc, "loadgen")
        self.loadgens.clear()
        super().teardown()

    def run_spread(self, scenario: Scenario, token: str, tag: str) -> dict[str, Any]:
        """The scenario with one load generator per edge, all at once; CPU per process over the window
        from the last `measure-start` to the first `measure-end`."""
        specs = []
        for i, port in enumerate(self.edge_ports):
            spec = self.scenario_spec(scenario, token, f"{tag}e{i}")
            specs.append({**spec, "port": port, "concurrency": self.args.concurrency})
        lines: list[list[str]] = [[] for _ in specs]
        started = [threading.Event() for _ in specs]
        ended = [threading.Event() for _ in specs]

        def read(i: int, proc: subprocess.Popen[bytes]) -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode().strip()
                lines[i].append(line)
                if line == "measure-start":
                    started[i].set()
                elif line == "measure-end":
                    ended[i].set()
            started[i].set()  # a dead load generator must not hang the wait below
            ended[i].set()

        readers = []
        for i, spec in enumerate(specs):
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.bench.loadgen"],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(spec).encode() + b"\n")
            proc.stdin.close()
            self.loadgens.append(proc)
            readers.append(threading.Thread(target=read, args=(i, proc), daemon=True))
            readers[-1].start()
        for event in started:
            event.wait()
        cpu0, t0 = self.cpu_seconds(), time.monotonic()
        ended[0].wait()
        cpu1, t1 = self.cpu_seconds(), time.monotonic()
        results = []
        for proc, reader, out in zip(self.loadgens, readers, lines, strict=True):
            code = proc.wait(self.args.warmup + self.args.duration + LOADGEN_GRACE + 30)
            reader.join(5)
            result = next((json.loads(x) for x in out if x.startswith("{")), None)
            if code != 0 or result is None:
                raise BenchError(f"a load generator of {scenario.key} failed (exit code {code})")
            results.append(result)
        self.loadgens.clear()
        self.check_alive()
        window = max(t1 - t0, 1e-9)
        cpu = {k: round(100 * (cpu1[k] - cpu0.get(k, 0.0)) / window, 1) for k in cpu1}
        rps = sum(r["rps"] for r in results)
        return {
            "key": scenario.key,
            "name": scenario.name,
            "loadgens": len(results),
            "connections": sum(s["concurrency"] for s in specs),
            "requests": sum(r["requests"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "rps": rps,
            "p50_ms": max(r["latency_ms"]["p50"] for r in results),
            "p99_ms": max(r["latency_ms"]["p99"] for r in results),
            "server_cpu_pct": cpu,
            "cpu_ms_per_op": round(sum(cpu.values()) * 10 / rps, 3) if rps else None,
        }


def scenarios_of(port: int, llm_port: int, concurrency: int) -> list[Scenario]:
    keys = {k.format(c=concurrency) for k in SCENARIO_KEYS}
    every = http_scenarios(port, 0) + chat_scenarios(port, llm_port, concurrency)
    return [s for s in every if s.key in keys and (s.concurrency in (None, concurrency))]


def measure_layout(args: argparse.Namespace, layout: Layout) -> dict[str, Any]:
    bench = ScaleBench(args, layout=layout)
    try:
        setup = bench.start()
        token, tag = setup["token"], uuid.uuid4().hex[:6]
        plan = scenarios_of(bench.edge_ports[0], setup["llm_port"], args.concurrency)
        for scenario in plan:  # every edge answers before the load (the first turn waits for the channel)
            for port in bench.edge_ports:
                scenario.port = port
                bench.probe(scenario, token, wait=15.0)
        time.sleep(1.0)
        results = []
        for scenario in plan:
            step(f"{layout} {scenario.key}: {args.warmup:g}s + {args.duration:g}s, {len(bench.edge_ports)} loadgen(s)")
            results.append(bench.run_spread(scenario, token, tag))
        return {"layout": str(layout), "edges": layout.edges, "workers": layout.workers, "scenarios": results}
    except BenchError:
        for name, child in bench.children.items():
            print(f"--- {name} log (tail) ---\n{tail(child.log, 15)}", file=sys.stderr)
        raise
    finally:
        step("teardown")
        bench.teardown()


def report(result: dict[str, Any]) -> str:
    layouts = result["layouts"]
    base = {s["key"]: s["rps"] for s in layouts[0]["scenarios"]} if layouts else {}
    rows = []
    for entry in layouts:
        for s in entry["scenarios"]:
            factor = s["rps"] / base[s["key"]] if base.get(s["key"]) else float("nan")
            rows.append(
                [
                    entry["layout"],
                    s["key"],
                    str(s["connections"]),
                    f"{s['rps']:,.0f}",
                    f"{factor:.2f}x",
                    f"{s['p50_ms']:.2f}",
                    f"{s['p99_ms']:.2f}",
                    str(s["errors"]),
                    "-" if s["cpu_ms_per_op"] is None else f"{s['cpu_ms_per_op']:.2f}",
                ]
            )
    m = result["machine"]
    return "\n".join(
        [
            "",
            f"chatbus scale  {result['timestamp']}  git {m['git']}  on {m['usable_cpus']} usable CPUs "
            f"({m['cpu_model']}); {result['config']['duration']:g}s per scenario",
            f"scaling factor = req/s of the layout / req/s of {layouts[0]['layout'] if layouts else '-'}; "
            "p50/p99 = the worst load generator's; CPU ms/op = all server processes",
            render_table(
                ["layout", "scenario", "conns", "req/s", "factor", "p50 ms", "p99 ms", "errors", "CPU ms/op"], rows
            ),
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", default="1x1,2x2", help="EDGESxWORKERS, comma-separated (default 1x1,2x2)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per scenario (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per scenario (default 1)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections per edge (default 32)")
    parser.add_argument("--out", default="bench-results", help="directory for the JSON result (default bench-results)")
    args = parser.parse_args(argv)
    try:
        args.layouts = [Layout.parse(x) for x in args.layouts.split(",") if x]
    except ValueError as exc:
        parser.error(str(exc))
    if not args.layouts or not (0 < args.duration <= 600 and 0 <= args.warmup <= 120 and 0 < args.concurrency <= 500):
        parser.error("need a layout, 0 < duration <= 600, 0 <= warmup <= 120, 0 < concurrency <= 500")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    per_layout = STARTUP_TIMEOUT * 2 + len(SCENARIO_KEYS) * (args.warmup + args.duration + LOADGEN_GRACE + 40)
    budget = int(len(args.layouts) * per_layout + 30)

    install_deadline(budget, BenchTimeout)  # each layout's teardown runs in its own `finally`
    started = time.monotonic()
    layouts = []
    try:
        for layout in args.layouts:
            layouts.append(measure_layout(args, layout))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (BenchTimeout, BenchError) as exc:
        print(f"\nscale bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    result: dict[str, Any] = {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(time.monotonic() - started, 1),
        "machine": machine_info(),
        "config": {"duration": args.duration, "warmup": args.warmup, "concurrency_per_edge": args.concurrency},
        "layouts": layouts,
    }
    print(report(result))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"scale-{result['timestamp'].replace('-', '').replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
