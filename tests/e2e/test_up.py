"""`chatbus up` as a new user runs it: embedded NATS and Postgres, Ctrl-C, and a second start."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from chatbus.devstack import free_port

pytestmark = pytest.mark.slow


class Up:
    """A `chatbus up` process whose output a thread collects: no read here can block past a deadline."""

    def __init__(self, data_dir: Path, port: int, password: str | None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBUS_")}
        env.update(CHATBUS_PORT=str(port), CHATBUS_DATA_DIR=str(data_dir), CHATBUS_LOG_LEVEL="WARNING")
        if password:
            env["CHATBUS_ADMIN_PASSWORD"] = password
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatbus", "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.eof = threading.Event()
        self.pid = self.proc.pid
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
        self.eof.set()

    def output(self) -> str:
        return "".join(self.lines)

    def poll(self) -> int | None:
        return self.proc.poll()


def start_up(data_dir: Path, port: int, password: str | None) -> Up:
    return Up(data_dir, port, password)


def wait_ready(up: Up, port: int) -> list[str]:
    """Wait for the banner, then for /health; returns the lines printed so far."""
    deadline = time.monotonic() + 90
    while not any("Press Ctrl-C to stop." in line for line in up.lines):
        if up.poll() is not None and up.eof.wait(5):
            raise AssertionError("chatbus up exited:\n" + up.output())
        if time.monotonic() > deadline:
            raise AssertionError("chatbus up printed no banner:\n" + up.output())
        time.sleep(0.1)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return list(up.lines)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("chatbus up never became healthy:\n" + up.output())


def stop_with_ctrl_c(up: Up) -> str:
    """Ctrl-C, then check nothing is left running; returns everything `up` printed."""
    tree = [up.pid] + [c.pid for c in psutil.Process(up.pid).children(recursive=True)]
    up.proc.send_signal(signal.SIGINT)
    try:
        code = up.proc.wait(60)
    except subprocess.TimeoutExpired:
        up.proc.kill()
        raise AssertionError("chatbus up did not stop within 60 s of Ctrl-C:\n" + up.output()) from None
    up.eof.wait(10)  # the rest of its output (EOF once every process that held the pipe is gone)
    output = up.output()
    assert code == 0, f"chatbus up exited with {code}:\n{output}"

    def alive() -> list[int]:
        return [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive() == [], f"left running after Ctrl-C: {alive()}\n{output}"
    return output


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
        # Two supervised children (the edge, and the worker running the relay), every role still reported.
        children = sorted(
            " ".join(cmd[3:5])
            for c in psutil.Process(proc.pid).children()
            if (cmd := c.cmdline())[1:3] == ["-m", "chatbus"]
        )
        assert children == ["edge --fd", "worker --relay"], children
        roles: set[str] = set()
        deadline = time.monotonic() + 30
        while not {"edge", "worker", "relay", "supervisor"} <= roles and time.monotonic() < deadline:
            status = httpx.get(f"{base}/api/system/status", headers=auth).json()["data"]
            roles = {i["role"] for i in status["instances"]}
            time.sleep(0.2)
        assert {"edge", "worker", "relay", "supervisor"} <= roles, roles
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


def chatbus_child(up: Up, role: str) -> psutil.Process | None:
    for child in psutil.Process(up.pid).children():
        with contextlib.suppress(psutil.Error):
            cmd = child.cmdline()
            if cmd[1:4] == ["-m", "chatbus", role] and child.status() != psutil.STATUS_ZOMBIE:
                return child
    return None


def test_a_crash_looping_child_is_restarted_and_reported_and_set_password_talks_to_the_stack(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc = start_up(tmp_path / "data", port, "first-password")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, port)
        edge = chatbus_child(proc, "edge")
        assert edge is not None
        # The worker crash-loops: killed each time it comes back.
        killed: set[int] = set()
        deadline = time.monotonic() + 60
        while len(killed) < 3 and time.monotonic() < deadline:
            worker = chatbus_child(proc, "worker")
            if worker is not None and worker.pid not in killed:
                killed.add(worker.pid)
                worker.send_signal(signal.SIGKILL)
            time.sleep(0.1)
        assert len(killed) == 3, "the worker was not restarted after being killed"
        assert proc.poll() is None, "chatbus up gave up"
        assert edge.is_running() and chatbus_child(proc, "edge") == edge  # the healthy edge was left alone
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200

        # Once the worker is back, the status names it as the failing (restarting) role.
        token = ""
        deadline = time.monotonic() + 60
        while not token and time.monotonic() < deadline:
            r = httpx.post(f"{base}/api/auth/login", json={"password": "first-password"}, timeout=10)
            token = r.json()["data"]["token"] if r.status_code == 200 else ""
            time.sleep(0.2)
        assert token
        status = httpx.get(f"{base}/api/system/status", headers={"Authorization": f"Bearer {token}"}).json()
        supervisor = status["data"]["components"]["supervisor"]
        assert supervisor["ok"] is False and supervisor["failing"] == ["worker"], supervisor
        worker_state = supervisor["children"]["worker"]
        assert worker_state["restarts"] >= 2 and worker_state["lastExit"] == -signal.SIGKILL
        assert supervisor["children"]["edge"]["state"] == "running"
        assert "supervisor" in {i["role"] for i in status["data"]["instances"]}

        # `admin set-password` while `up` holds the database: it goes through the running stack.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBUS_")}
        env["CHATBUS_DATA_DIR"] = str(tmp_path / "data")
        done = subprocess.run(
            [sys.executable, "-m", "chatbus", "admin", "set-password", "--password", "second-password"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        r = httpx.post(f"{base}/api/auth/login", json={"password": "second-password"}, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        output = stop_with_ctrl_c(proc)
    # No process of `up` logs in another format (Litestar's `INFO - <time> - ...`, uvicorn's `INFO:  ...`),
    # nor below the level asked for (CHATBUS_LOG_LEVEL=WARNING: the edge's `command ... -> ok` is INFO).
    foreign = [line for line in output.splitlines() if re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL)(:| - )", line)]
    assert not foreign, foreign
    assert " INFO " not in output, output
    # The supervisor logs in the format of every other process: `<time> <LEVEL> <logger>: <message>`.
    exits = [line for line in output.splitlines() if "worker exited with code -9" in line]
    assert len(exits) >= 3, output
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ WARNING chatbus\.up: ", line) for line in exits), exits


class _Foreign(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_up_does_not_report_ready_for_someone_elses_server_on_its_port(tmp_path: Path) -> None:
    """Another server answers /health on the port: `up` must not take it for its own edge."""
    port = free_port()
    foreign = http.server.HTTPServer(("127.0.0.1", port), _Foreign)
    thread = threading.Thread(target=foreign.serve_forever, daemon=True)
    thread.start()
    try:
        proc = start_up(tmp_path / "data", port, "some-password")
        try:
            code = proc.proc.wait(90)
        finally:
            if proc.poll() is None:
                stop_with_ctrl_c(proc)
        proc.eof.wait(10)
        assert code != 0
        output = proc.output()
        assert "chatbus is up" not in output and "cannot listen" in output, output
    finally:
        foreign.shutdown()
        foreign.server_close()
