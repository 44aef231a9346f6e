"""chatbus roles as real OS processes, for tests that kill them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import nats.errors
from nats.aio.client import Client as NATS

from bus import crypto
from tests.waiting import WaitTimeout, wait_until


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
    """SIGTERM, and SIGKILL if it has not exited after 10 s (a test that stops a role still ends)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(WaitTimeout):
        await wait_until(lambda: proc.poll() is not None, timeout=10, interval=0.1)
    kill(proc)


async def wait_for_responders(nc: NATS, subject: str, timeout: float = 20) -> None:
    """Until some process answers on `subject` (any reply, even an error, means it is up)."""
    await wait_until(
        lambda: nc.request(subject, b"{}", timeout=0.5),
        timeout=timeout,
        interval=0.1,
        message=f"a responder on {subject}",
        retry_on=(nats.errors.NoRespondersError, nats.errors.TimeoutError),
    )
