"""`chatbus up`: the whole system on one machine, in one process tree.

Embedded NATS and Postgres (unless CHATBUS_NATS_URL / CHATBUS_DATABASE_URL point elsewhere), then
migrations and bootstrap, then two supervised child processes: the edge, and the workers with the relay
inside (`chatbus worker --relay`; the layout measured in docs/architecture.md, "Process layout").
A child that dies is restarted with exponential backoff, forever: one crash-looping role never takes
NATS, Postgres and the healthy children down with it; it shows as failing in /api/system/status."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bus.heartbeat import ChildStatus
from chatbus.devstack import EmbeddedNats, EmbeddedPostgres
from chatbus.settings import Settings

BACKOFF_FIRST = 0.5  # seconds before the first restart, doubling on each crash in a row...
BACKOFF_MAX = 30.0  # ...up to this
STABLE_AFTER = 30.0  # a child up this long is healthy again: the next crash restarts it quickly
TICK = 0.25
RUN_FILE = "run.json"  # where a running `up` tells other commands (`admin set-password`) how to reach it


@contextlib.contextmanager
def embedded_database(settings: Settings) -> Iterator[str]:
    pg = EmbeddedPostgres(Path(settings.data_dir) / "postgres")
    try:
        yield pg.start()
    finally:
        pg.stop()


_log = logging.getLogger("chatbus.up")


def log(message: str) -> None:
    # Through logging: the same line format as every child process writes to the console.
    _log.warning(message)


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.pass_fds = pass_fds
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.backoff = BACKOFF_FIRST
        self.restart_at: float | None = None  # set while it waits out its backoff
        self.last_exit: int | None = None
        self.last_exit_at: str | None = None

    def start(self) -> None:
        # A session of its own: Ctrl-C reaches only `up`, which stops the children in order (SIGTERM),
        # instead of every process getting the terminal's SIGINT and then `up`'s SIGTERM on top.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatbus", *self.argv],
            env=self.env,
            start_new_session=True,
            pass_fds=self.pass_fds,
        )
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self, now: float) -> bool:
        """Restart the child if it died (after its backoff). True when its state changed."""
        if self.proc is None:
            return False
        code = self.proc.poll()
        if code is None:
            if self.backoff > BACKOFF_FIRST and now - self.started_at >= STABLE_AFTER:
                self.backoff = BACKOFF_FIRST
                return True
            return False
        if self.restart_at is None:
            self.last_exit = code
            self.last_exit_at = datetime.now(UTC).isoformat()
            self.restart_at = now + self.backoff
            log(f"{self.name} exited with code {code}; restarting in {self.backoff:g}s")
            self.backoff = min(self.backoff * 2, BACKOFF_MAX)
            return True
        if now >= self.restart_at:
            self.restarts += 1
            self.start()
            log(f"{self.name} restarted (restart {self.restarts}, pid {self.proc.pid})")
            return True
        return False

    def status(self, now: float) -> ChildStatus:
        alive = self.proc is not None and self.proc.poll() is None
        # Running, and not in the middle of a crash loop (a restarted child must first stay up a while).
        healthy = alive and (self.backoff == BACKOFF_FIRST or now - self.started_at >= STABLE_AFTER)
        return ChildStatus(
            state="running" if healthy else "restarting",
            pid=self.proc.pid if alive and self.proc is not None else None,
            restarts=self.restarts,
            last_exit=self.last_exit,
            last_exit_at=self.last_exit_at,
            next_restart_in=round(max(0.0, self.restart_at - now), 2) if self.restart_at is not None else None,
        )

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


def listen_socket(host: str, port: int) -> socket.socket:
    """The edge's socket, bound here and inherited by the edge process: a port already taken fails
    now, plainly, the readiness probe can only reach our own edge, and a restarted edge keeps the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when it says TCP.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(
            f"chatbus: cannot listen on {host}:{port}: {exc.strerror} (is another chatbus up running?)"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_up(settings: Settings) -> int:
    data_dir = Path(settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)  # it holds the generated passwords of NATS and Postgres
    nats = None if settings.nats_url else EmbeddedNats(data_dir / "nats")
    pg = None if settings.database_url else EmbeddedPostgres(data_dir / "postgres")
    signalled = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal signalled
        signalled = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sock = listen_socket(settings.host, settings.port)
    children: list[Child] = []
    run_file = data_dir / RUN_FILE
    try:
        nats_url = nats.start() if nats else settings.nats_url
        database_url = pg.start() if pg else settings.database_url
        env = {**os.environ, "CHATBUS_NATS_URL": nats_url, "CHATBUS_DATABASE_URL": database_url}
        env["CHATBUS_DATA_DIR"] = str(data_dir)  # children read the keyring there (and see a rotation)
        generated, domains = _bootstrap(env)
        _write_run_file(run_file, nats_url, database_url)
        # Workers first: the edge opens only once every domain is served, so the first request after
        # the banner never meets a 503.
        children = [Child("worker", ["worker", "--relay"], env)]
        edge = Child("edge", ["edge", "--fd", str(sock.fileno())], env, pass_fds=(sock.fileno(),))
        for child in children:
            child.start()

        async def ready() -> None:
            await _workers_ready(nats_url, domains)
            edge.start()
            children.append(edge)
            await _wait_http(settings, edge)
            _banner(settings, data_dir, generated, bool(nats), bool(pg))

        return asyncio.run(_supervise(nats_url, children, ready, lambda: signalled))
    finally:
        with contextlib.suppress(OSError):
            run_file.unlink()
        for child in children:
            child.terminate()
        for child in children:
            child.wait(15)
        sock.close()
        if nats:
            nats.stop()
        if pg:
            pg.stop()


async def _supervise(
    nats_url: str,
    children: list[Child],
    ready: Callable[[], Coroutine[Any, Any, None]],
    signalled: Callable[[], bool],
) -> int:
    """Keep every child running until a signal; publish their state as the `supervisor` instance."""
    from bus import nats_conn
    from bus.heartbeat import Heartbeat

    nc = await nats_conn.connect(nats_url, name="chatbus-up")
    heartbeat = Heartbeat(
        nc, "supervisor", children=lambda: {c.name: c.status(time.monotonic()) for c in list(children)}
    )
    with contextlib.suppress(Exception):
        await heartbeat.start()
    starting = asyncio.create_task(ready())
    try:
        while not signalled():
            if starting.done() and (failure := starting.exception()) is not None:
                log(f"start-up failed: {failure}")
                return 1
            now = time.monotonic()
            changed = [child.check(now) for child in list(children)]
            if any(changed):
                with contextlib.suppress(Exception):
                    await heartbeat.beat()  # at once, not at the next 5 s beat
            await asyncio.sleep(TICK)
        print(flush=True)  # past the ^C the terminal echoed
        _log.info("stopping...")
        return 0
    finally:
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
        await heartbeat.stop()
        with contextlib.suppress(Exception):
            await nc.close()


def _write_run_file(path: Path, nats_url: str, database_url: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "nats_url": nats_url, "database_url": database_url}, f)


def running_stack(data_dir: str) -> dict[str, str] | None:
    """The URLs of the `chatbus up` running on `data_dir`, if one runs."""
    path = Path(data_dir).resolve() / RUN_FILE
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"nats_url": str(info["nats_url"]), "database_url": str(info["database_url"])}


def _bootstrap(env: dict[str, str]) -> tuple[str | None, list[str]]:
    """Migrations, streams, system presets, the admin and the keyring, in a short-lived child
    (`chatbus migrate --for-up`): the supervisor never imports the domains, so it stays ~30 MiB for
    its whole life instead of ~50. Returns the admin password generated just now, if any, and the
    domains the workers must serve before the edge opens."""
    # A session of its own, like every child: a Ctrl-C now lets the bootstrap finish, then `up` stops.
    done = subprocess.run(
        [sys.executable, "-m", "chatbus", "migrate", "--for-up"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the bootstrap (migrations, streams, admin) failed with exit code {done.returncode}")
    info = json.loads(lines[-1])
    return info["generated"], list(info["domains"])


async def _workers_ready(nats_url: str, domains: list[str]) -> None:
    from bus import nats_conn
    from bus.commands import wait_for_workers

    nc = await nats_conn.connect(nats_url, name="chatbus-up-ready")
    try:
        await wait_for_workers(nc, domains)
    finally:
        await nc.close()


def _health(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:  # not listening yet, or up with a dependency not ready (HTTPError 503)
        return False


async def _wait_http(settings: Settings, edge: Child, timeout: float = 60.0) -> None:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    host = f"[{host}]" if ":" in host else host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The socket is ours (see listen_socket), so whoever answers here is our edge. One probe per
        # thread call: a Ctrl-C during start-up cancels this within a probe's 2 s.
        if await asyncio.to_thread(_health, f"http://{host}:{settings.port}/health"):
            return
        await asyncio.sleep(0.2)
    code = edge.proc.returncode if edge.proc is not None else None
    raise RuntimeError(f"the edge did not answer on port {settings.port} within {timeout:.0f}s (last exit: {code})")


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
