"""`chatbus up`: the whole system on one machine, in one process tree.

Embedded NATS and Postgres (unless CHATBUS_NATS_URL / CHATBUS_DATABASE_URL point elsewhere), then
migrations and bootstrap, then one edge, the workers and the relay as supervised child processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from chatbus.devstack import EmbeddedNats, EmbeddedPostgres
from chatbus.settings import Settings

RESTART_LIMIT = 5  # restarts per child per minute before `up` gives up


@contextlib.contextmanager
def embedded_database(settings: Settings) -> Iterator[str]:
    pg = EmbeddedPostgres(Path(settings.data_dir) / "postgres")
    try:
        yield pg.start()
    finally:
        pg.stop()


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts: list[float] = []

    def start(self) -> None:
        # A session of its own: Ctrl-C reaches only `up`, which stops the children in order (SIGTERM),
        # instead of every process getting the terminal's SIGINT and then `up`'s SIGTERM on top.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatbus", *self.argv], env=self.env, start_new_session=True
        )

    def check(self) -> bool:
        """Restart the child if it died; False when it keeps dying."""
        if self.proc is None or self.proc.poll() is None:
            return True
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        if len(self.restarts) > RESTART_LIMIT:
            print(f"chatbus: {self.name} keeps exiting (code {self.proc.returncode}); stopping", file=sys.stderr)
            return False
        print(f"chatbus: {self.name} exited with code {self.proc.returncode}; restarting", file=sys.stderr)
        self.start()
        return True

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def run_up(settings: Settings) -> int:
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    nats = None if settings.nats_url else EmbeddedNats(data_dir / "nats")
    pg = None if settings.database_url else EmbeddedPostgres(data_dir / "postgres")
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    children: list[Child] = []
    try:
        nats_url = nats.start() if nats else settings.nats_url
        database_url = pg.start() if pg else settings.database_url
        from chatbus.runtime import bootstrap

        generated = asyncio.run(
            bootstrap(
                database_url,
                nats_url,
                settings.admin_username,
                settings.admin_password,
                jetstream_replicas=settings.jetstream_replicas,
            )
        )
        from bus import crypto

        crypto.load(data_dir, create=True)  # the secret keyring: CHATBUS_SECRET_KEY, else made once (0600)
        env = {**os.environ, "CHATBUS_NATS_URL": nats_url, "CHATBUS_DATABASE_URL": database_url}
        env["CHATBUS_DATA_DIR"] = str(data_dir)  # children read the keyring there (and see a rotation)
        # Workers first: the edge opens only once every domain is served, so the first request after
        # the banner never meets a 503.
        children = [Child("worker", ["worker"], env), Child("relay", ["relay"], env)]
        for child in children:
            child.start()
        asyncio.run(_workers_ready(nats_url))
        edge = Child("edge", ["edge", "--host", settings.host, "--port", str(settings.port)], env)
        edge.start()
        children.append(edge)
        _wait_http(settings, edge)
        _banner(settings, data_dir, generated, bool(nats), bool(pg))
        while not stopping:
            if not all(child.check() for child in children):
                return 1
            time.sleep(0.5)
        print("\nchatbus: stopping...", flush=True)
        return 0
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(15)
        if nats:
            nats.stop()
        if pg:
            pg.stop()


async def _workers_ready(nats_url: str) -> None:
    from bus import nats_conn
    from bus.commands import wait_for_workers
    from chatbus.runtime import ALL_DOMAINS

    nc = await nats_conn.connect(nats_url, name="chatbus-up")
    try:
        await wait_for_workers(nc, ALL_DOMAINS)
    finally:
        await nc.close()


def _wait_http(settings: Settings, edge: Child, timeout: float = 60.0) -> None:
    import urllib.request

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if edge.proc is not None and edge.proc.poll() is not None:
            raise SystemExit(f"chatbus: the edge exited with code {edge.proc.returncode} during start-up")
        try:
            with urllib.request.urlopen(f"http://{host}:{settings.port}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"chatbus: the edge did not answer on port {settings.port} within {timeout:.0f}s")


def _banner(settings: Settings, data_dir: Path, generated: str | None, own_nats: bool, own_pg: bool) -> None:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}"
    lines = [
        "",
        f"chatbus is up: {url}",
        f"  API docs:  {url}/schema",
        f"  data:      {data_dir}" + ("" if own_nats or own_pg else " (external NATS and Postgres)"),
    ]
    if generated:
        lines += [
            f"  login:     user '{settings.admin_username}', password: {generated}",
            "             (shown this once; change it with `chatbus admin set-password`)",
        ]
    elif settings.admin_password:
        lines.append(f"  login:     user '{settings.admin_username}' with CHATBUS_ADMIN_PASSWORD")
    else:
        lines.append(f"  login:     user '{settings.admin_username}' with the password from the first start")
    lines += [
        f"  try:       curl -s -X POST {url}/api/auth/login -H 'Content-Type: application/json' "
        '-d \'{"password": "..."}\'',
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)
