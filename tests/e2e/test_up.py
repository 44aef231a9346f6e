"""`chatbus up` as a new user runs it: embedded NATS and Postgres, Ctrl-C, and a second start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from chatbus.devstack import free_port

pytestmark = pytest.mark.slow


def start_up(data_dir: Path, port: int, password: str | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBUS_")}
    env.update(CHATBUS_PORT=str(port), CHATBUS_DATA_DIR=str(data_dir), CHATBUS_LOG_LEVEL="WARNING")
    if password:
        env["CHATBUS_ADMIN_PASSWORD"] = password
    return subprocess.Popen(
        [sys.executable, "-m", "chatbus", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_ready(proc: subprocess.Popen[str], port: int) -> list[str]:
    """Read the banner, then wait for /health; returns the lines printed so far."""
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError("chatbus up exited:\n" + "".join(lines))
        lines.append(line)
        if "Press Ctrl-C to stop." in line:
            break
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return lines
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("chatbus up never became healthy:\n" + "".join(lines))


def stop_with_ctrl_c(proc: subprocess.Popen[str]) -> None:
    tree = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(signal.SIGINT)
    code = proc.wait(60)
    output = proc.stdout.read() if proc.stdout else ""
    assert code == 0, f"chatbus up exited with {code}:\n{output}"

    def alive() -> list[int]:
        return [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive() == [], f"left running after Ctrl-C: {alive()}\n{output}"


def test_up_prints_the_password_once_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    proc = start_up(tmp_path / "data", port, None)
    try:
        banner = "".join(wait_ready(proc, port))
        assert f"http://127.0.0.1:{port}" in banner
        password = banner.split("password: ", 1)[1].split()[0]
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(f"{base}/api/auth/login", json={"password": password}).json()["data"]["token"]
        auth = {"Authorization": f"Bearer {token}"}
        r = httpx.post(f"{base}/api/presets", json={"id": "survives", "name": "S"}, headers=auth)
        assert r.status_code == 201, r.text
    finally:
        stop_with_ctrl_c(proc)

    proc = start_up(tmp_path / "data", port, None)
    try:
        banner = "".join(wait_ready(proc, port))
        assert password not in banner and "password from the first start" in banner
        token = httpx.post(f"{base}/api/auth/login", json={"password": password}).json()["data"]["token"]
        r = httpx.get(f"{base}/api/presets/survives", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["data"]["name"] == "S"
    finally:
        stop_with_ctrl_c(proc)
