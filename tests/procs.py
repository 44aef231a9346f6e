"""chatbus roles as real OS processes, for tests that kill them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from bus import crypto


def spawn(role: list[str], nats_url: str, dsn: str, **env: str) -> subprocess.Popen[bytes]:
    ring = crypto.active()  # the test session's keyring: a spawned worker opens what in-process ones sealed
    full_env = {
        **os.environ,
        "CHATBUS_NATS_URL": nats_url,
        "CHATBUS_DATABASE_URL": dsn,
        "CHATBUS_LOG_LEVEL": "WARNING",
        **({"CHATBUS_DATA_DIR": str(ring.path.parent)} if ring.path else {}),
        **env,
    }
    return subprocess.Popen([sys.executable, "-m", "chatbus", *role], env=full_env)


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


async def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    for _ in range(100):
        if proc.poll() is not None:
            return
        await asyncio.sleep(0.1)
    kill(proc)


async def wait_for_responders(nc, subject: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    """Until some process answers on `subject` (any reply, even an error, means it is up)."""
    import nats.errors

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await nc.request(subject, b"{}", timeout=0.5)
            return
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
