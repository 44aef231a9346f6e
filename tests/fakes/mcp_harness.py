"""Starting the fake MCP server (tests/fakes/mcp_server.py) as a real process, for tests and benches."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psutil

from schemas.mcp import McpServerConfig, normalize_server
from tests import waiting

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What the operator would put in CHATBUS_MCP_STDIO_ALLOW for these tests.
ALLOW = "python -m tests.fakes.mcp_server; python -m mcp_server_time"
MODULE = "tests.fakes.mcp_server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stdio_config(name: str, **extra: Any) -> McpServerConfig:
    """The fake server over stdio; `python` runs as this interpreter, cwd is the repo (for `-m tests...`)."""
    return normalize_server(
        {"name": name, "command": "python", "args": ["-m", MODULE, "stdio", "0", name], "cwd": REPO, **extra}
    )


def url_config(name: str, kind: str, port: int, **extra: Any) -> McpServerConfig:
    path = "/sse" if kind == "sse" else "/mcp"
    return normalize_server({"name": name, "type": kind, "url": f"http://127.0.0.1:{port}{path}", **extra})


class HttpServer:
    """The fake server over SSE or streamable HTTP on a fixed 127.0.0.1 port, restartable after a kill."""

    def __init__(self, kind: str, name: str, port: int | None = None) -> None:
        self.kind, self.name = kind, name
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, self.kind, str(self.port), self.name],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await wait_until(self._listening, 20, "the fake MCP server to listen")

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the fake MCP server exited with {self.proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def config(self, **extra: Any) -> McpServerConfig:
        return url_config(self.name, self.kind, self.port, **extra)


def stdio_children(marker: str = MODULE) -> list[psutil.Process]:
    """This process's children running the fake server (the stdio servers the manager spawned)."""
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if marker in " ".join(child.cmdline()):
                out.append(child)
        except psutil.Error:
            continue
    return out


async def wait_until(cond: Callable[[], bool], timeout: float = 20, what: str = "the condition") -> None:
    """`tests.waiting.wait_until` under the argument names this harness's callers use."""
    await waiting.wait_until(cond, timeout=timeout, interval=0.02, message=what)
