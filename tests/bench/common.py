"""Process and HTTP helpers shared by the benches (`run`, `scale`, `wsfan`): 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def busy_total(times: Any) -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine; guest time is already inside user time."""
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return total - times.idle - getattr(times, "iowait", 0.0), total


def step(message: str) -> None:
    print(f"- {message}", flush=True)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy: 127.0.0.1 only


def http(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    raw: bool = False,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """A set-up request (not the load): (status, decoded JSON body or text; the body's bytes if `raw`)."""
    headers = {**(headers or {}), **({"Content-Type": "application/json"} if body is not None else {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method, headers=headers)
    try:
        with _opener.open(request, timeout=timeout) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, data = exc.code, exc.read()
    if raw:
        return status, data
    try:
        return status, json.loads(data)
    except ValueError:
        return status, data[:300].decode(errors="replace")


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def stop_process(proc: subprocess.Popen[bytes], name: str, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"  ! {name} did not stop within {timeout:.0f}s; killing it", file=sys.stderr)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: takes any leftover children with it
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


def install_deadline(budget: int, timeout_error: type[Exception]) -> None:
    """The whole run stops after `budget` seconds (SIGALRM raises `timeout_error`), and SIGTERM or SIGINT
    raise KeyboardInterrupt, so every path reaches the teardown that stops the child processes."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise timeout_error(f"global timeout of {budget}s reached")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (`&`)
    signal.alarm(budget)
