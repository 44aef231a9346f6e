"""The back end of a bench run and what it reports about the machine: the environment of the chatbus
processes, bootstrap, the config's rate limit, the fsync probe, machine facts. Shared by `run` and `scale`."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from bus import crypto
from tests.bench.common import HOST, REPO

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "bench-admin-password"
MIB = 1024 * 1024


def chatbus_env(nats_url: str, dsn: str) -> dict[str, str]:
    """The environment of every chatbus process of a run (and of the bare app and the fake LLM)."""
    env = {
        **os.environ,
        "CHATBUS_NATS_URL": nats_url,
        "CHATBUS_DATABASE_URL": dsn,
        "CHATBUS_LOG_LEVEL": "WARNING",
    }
    for key in ("CHATBUS_HOST", "CHATBUS_PORT", "CHATBUS_DATA_DIR"):
        env.pop(key, None)
    env.setdefault("CHATBUS_SECRET_KEY", crypto.encode_key(crypto.new_key()))  # workers seal channel keys
    for key in ("NO_PROXY", "no_proxy"):  # the worker's HTTP client honours *_PROXY: never for the LLM
        env[key] = ",".join(x for x in (env.get(key), HOST) if x)
    return env


async def set_rate_limit(dsn: str, requests_per_minute: int) -> None:
    from bus import db
    from services.config.handlers import set_config
    from services.registry import make_store

    pool = await db.create_pool(dsn, max_size=1)
    try:
        reply = await set_config(make_store(pool), {"rateLimit": {"requestsPerMinute": requests_per_minute}})
        assert reply.ok, reply.error
    finally:
        await pool.close()


async def bootstrap(dsn: str, nats_url: str) -> dict[str, str]:
    from bus import db
    from chatbus.runtime import bootstrap as chatbus_bootstrap

    await chatbus_bootstrap(dsn, nats_url, ADMIN_USERNAME, ADMIN_PASSWORD)
    conn = await db.connect(dsn)
    try:
        names = (
            "server_version",
            "fsync",
            "synchronous_commit",
            "full_page_writes",
            "wal_sync_method",
            "shared_buffers",
            "max_connections",
        )
        return {n: str(await conn.fetchval(f"SHOW {n}")) for n in names}
    finally:
        await conn.close()


def fsync_probe(path: Path, rounds: int = 200, budget: float = 1.0) -> dict[str, Any]:
    """How long one 8 KiB write + fdatasync takes where Postgres keeps its WAL (context for writes)."""
    samples: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        deadline = time.monotonic() + budget
        block = b"\0" * 8192
        while len(samples) < rounds and time.monotonic() < deadline:
            t0 = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    samples.sort()
    return {
        "samples": len(samples),
        "p50_ms": round(samples[len(samples) // 2], 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3),
    }


def filesystem_of(path: Path) -> str:
    best, fstype = "", "?"
    for part in psutil.disk_partitions(all=True):
        if str(path).startswith(part.mountpoint) and len(part.mountpoint) > len(best):
            best, fstype = part.mountpoint, part.fstype
    return f"{fstype} ({best})"


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    git = ""
    with contextlib.suppress(Exception):
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        git = f"{sha}{' (dirty)' if dirty else ''}"
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_mib": round(psutil.virtual_memory().total / MIB),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "git": git,
    }
