"""The MCP client layer against real MCP servers: the SDK's MCPServer over stdio, SSE and streamable
HTTP (tests/fakes/mcp_server.py) and `mcp-server-time` from PyPI over stdio. No mocks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas.mcp import McpServerState, normalize_server
from services.tools.mcp.allowlist import ENV_VAR
from services.tools.mcp.manager import McpManager
from tests.fakes.mcp_harness import ALLOW, HttpServer, stdio_children, stdio_config, wait_until


class Recorder:
    def __init__(self) -> None:
        self.states: list[McpServerState] = []

    def __call__(self, state: McpServerState) -> None:
        self.states.append(state)

    def seen(self, name: str) -> list[str]:
        return [s.status for s in self.states if s.name == name]


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture()
async def manager(tmp_path: Path, recorder: Recorder) -> AsyncIterator[McpManager]:
    data = tmp_path / "data"
    data.mkdir()
    m = McpManager(
        on_change=recorder,
        data_directory=str(data),
        environ={ENV_VAR: ALLOW},
        ping_interval=2.0,
        connect_timeout=20.0,
        backoff_base=0.05,
        backoff_max=0.5,
    )
    try:
        yield m
    finally:
        await m.close()


@pytest.fixture()
async def servers() -> AsyncIterator[list[HttpServer]]:
    started: list[HttpServer] = []
    try:
        yield started
    finally:
        for s in started:
            s.kill()


async def http_server(servers: list[HttpServer], kind: str, name: str) -> HttpServer:
    server = HttpServer(kind, name)
    servers.append(server)
    await server.start()
    return server


def connected(m: McpManager, name: str) -> bool:
    state = m.state(name)
    return state is not None and state.status == "connected"


@pytest.mark.parametrize("kind", ["stdio", "sse", "http"])
async def test_connect_list_and_call_over_each_transport(
    kind: str, manager: McpManager, servers: list[HttpServer]
) -> None:
    config = stdio_config("srv") if kind == "stdio" else (await http_server(servers, kind, "srv")).config()
    await manager.apply([config])
    await wait_until(lambda: connected(manager, "srv"), what="connected")

    state = manager.state("srv")
    assert state is not None and state.connected_at is not None and state.error is None
    assert (state.tools_count, state.resources_count, state.prompts_count) == (6, 1, 1)
    names = {t.name for t in manager.tools()}
    assert {"srv__echo", "srv__add", "srv__slow", "srv__grow", "srv__fail", "srv__whoami"} == names
    echo = next(t for t in manager.tools() if t.name == "srv__echo")
    assert (echo.server_name, echo.tool_name) == ("srv", "echo")
    assert echo.input_schema["properties"]["text"]["type"] == "string"
    assert [r["uri"] for r in manager.resources()] == ["fake://readme"]
    assert [p["name"] for p in manager.prompts()] == ["greet"]

    result = await manager.call("srv__echo", {"text": "hello"})
    assert (result.text, result.is_error, result.server_name, result.tool_name) == ("hello", False, "srv", "echo")
    assert result.duration > 0
    assert (await manager.call("srv__add", {"a": 2, "b": 3})).text == "5.0"

    failed = await manager.call("srv__fail", {})
    assert failed.is_error and "Traceback" not in failed.text
    bad_args = await manager.call("srv__add", {"a": "x"})
    assert bad_args.is_error and "Traceback" not in bad_args.text
    unknown = await manager.call("srv__nope", {})
    assert unknown.is_error and "unknown MCP tool" in unknown.text


@pytest.mark.parametrize("kind", ["stdio", "http"])
async def test_concurrent_calls_from_many_tasks(kind: str, manager: McpManager, servers: list[HttpServer]) -> None:
    config = stdio_config("srv") if kind == "stdio" else (await http_server(servers, kind, "srv")).config()
    await manager.apply([config])
    await wait_until(lambda: connected(manager, "srv"), what="connected")
    results = await asyncio.gather(*(manager.call("srv__echo", {"text": f"n{i}"}) for i in range(40)))
    assert [r.text for r in results] == [f"n{i}" for i in range(40)]


async def test_mcp_server_time_from_pypi_over_stdio(manager: McpManager) -> None:
    config = normalize_server(
        {"name": "time", "command": "python", "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}
    )
    await manager.apply([config])
    await wait_until(lambda: connected(manager, "time"), what="mcp-server-time")
    assert {"time__get_current_time", "time__convert_time"} <= {t.name for t in manager.tools()}
    result = await manager.call("time__get_current_time", {"timezone": "Europe/Paris"})
    assert not result.is_error
    assert "Europe/Paris" in result.text


async def test_two_servers_with_the_same_tool_names_are_both_callable(
    manager: McpManager, servers: list[HttpServer]
) -> None:
    remote = await http_server(servers, "http", "beta")
    await manager.apply([stdio_config("alpha"), remote.config()])
    await wait_until(lambda: connected(manager, "alpha") and connected(manager, "beta"), what="both")
    assert (await manager.call("alpha__whoami", {})).text == "alpha"
    assert (await manager.call("beta__whoami", {})).text == "beta"
    assert len([t for t in manager.tools() if t.tool_name == "whoami"]) == 2


async def test_stdio_server_killed_is_restarted(manager: McpManager, recorder: Recorder) -> None:
    await manager.apply([stdio_config("srv")])
    await wait_until(lambda: connected(manager, "srv"), what="connected")
    [child] = stdio_children()
    first_pid = child.pid
    recorder.states.clear()

    child.kill()
    await wait_until(lambda: "error" in recorder.seen("srv"), what="the kill to be seen")
    await wait_until(lambda: connected(manager, "srv"), what="reconnected")

    seen = recorder.seen("srv")
    assert seen.index("error") < seen.index("connecting") < seen.index("connected")
    assert [c.pid for c in stdio_children()] != [first_pid]
    assert (await manager.call("srv__echo", {"text": "again"})).text == "again"
    await manager.close()
    await wait_until(lambda: stdio_children() == [], what="no server process left")


@pytest.mark.parametrize("kind", ["http", "sse"])
async def test_http_server_killed_and_restarted_reconnects(
    kind: str, manager: McpManager, recorder: Recorder, servers: list[HttpServer]
) -> None:
    remote = await http_server(servers, kind, "srv")
    await manager.apply([remote.config()])
    await wait_until(lambda: connected(manager, "srv"), what="connected")
    recorder.states.clear()

    remote.kill()
    # A call while the server is down is an error result, not an exception.
    await wait_until(lambda: not connected(manager, "srv"), what="the kill to be seen")
    down = await manager.call("srv__echo", {"text": "x"})
    assert down.is_error
    await wait_until(lambda: len(recorder.seen("srv")) >= 3, what="a few failed attempts")
    state = manager.state("srv")
    assert state is not None and state.status in ("error", "connecting")
    assert all(s.error is None or "Traceback" not in s.error for s in recorder.states)

    await remote.start()
    await wait_until(lambda: connected(manager, "srv"), what="reconnected")
    assert "error" in recorder.seen("srv")
    assert (await manager.call("srv__echo", {"text": "back"})).text == "back"


@pytest.mark.parametrize("kind", ["stdio", "http"])
async def test_tool_list_changed_is_picked_up(kind: str, manager: McpManager, servers: list[HttpServer]) -> None:
    config = stdio_config("srv") if kind == "stdio" else (await http_server(servers, kind, "srv")).config()
    await manager.apply([config])
    await wait_until(lambda: connected(manager, "srv"), what="connected")
    assert (await manager.call("srv__grow", {"tool": "sprout"})).text == "ok"
    await wait_until(lambda: "srv__sprout" in {t.name for t in manager.tools()}, what="the new tool")
    state = manager.state("srv")
    assert state is not None and state.tools_count == 7
    assert (await manager.call("srv__sprout", {})).text == "grown:sprout"


async def test_call_timeout_is_an_error_result_and_the_session_survives(manager: McpManager) -> None:
    await manager.apply([stdio_config("srv", timeout=0.5)])
    await wait_until(lambda: connected(manager, "srv"), what="connected")
    result = await manager.call("srv__slow", {"seconds": 60})
    assert result.is_error
    assert "timed out" in result.text
    assert (await manager.call("srv__echo", {"text": "still here"})).text == "still here"


async def test_disallowed_stdio_command_is_refused_before_any_process_starts(
    manager: McpManager, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    refused = [
        normalize_server({"name": "touch", "command": "touch", "args": [str(marker)]}),
        normalize_server({"name": "pyc", "command": "python", "args": ["-c", "x"]}),
        normalize_server({"name": "script", "command": "python", "args": [str(tmp_path / "evil.py")]}),
        normalize_server(
            {
                "name": "pypath",
                "command": "python",
                "args": ["-m", "tests.fakes.mcp_server"],
                "env": {"PYTHONPATH": str(tmp_path)},
            }
        ),
    ]
    before = {p.pid for p in stdio_children("")}
    for config in refused:
        assert manager.check(config) is not None
    await manager.apply(refused)
    await wait_until(lambda: all(s.status == "error" for s in manager.status()), what="all refused", timeout=10)
    for state in manager.status():
        assert state.error and ("not allowed" in state.error or "module" in state.error)
    assert not marker.exists()
    assert {p.pid for p in stdio_children("")} <= before
    assert manager.tools() == []


async def test_allow_list_file_in_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    m = McpManager(data_directory=str(data), environ={})
    config = stdio_config("srv")
    assert m.check(config) is not None
    (data / "mcp-stdio-allow.txt").write_text("python -m tests.fakes.mcp_server\n")
    assert m.check(config) is None
    assert m.check(normalize_server({"name": "x", "url": "http://127.0.0.1:1/mcp"})) is None


async def test_apply_is_idempotent_and_follows_config_changes(manager: McpManager, recorder: Recorder) -> None:
    await manager.apply([stdio_config("srv")])
    await wait_until(lambda: connected(manager, "srv"), what="connected")
    [child] = stdio_children()

    await manager.apply([stdio_config("srv")])  # same config: nothing restarts
    assert connected(manager, "srv")
    assert [c.pid for c in stdio_children()] == [child.pid]

    await manager.apply([stdio_config("srv", timeout=5)])  # changed: restarted
    await wait_until(lambda: connected(manager, "srv"), what="restarted")
    assert [c.pid for c in stdio_children()] != [child.pid]

    await manager.apply([stdio_config("srv", enabled=False)])
    state = manager.state("srv")
    assert state is not None and state.status == "disconnected"
    assert recorder.seen("srv")[-1] == "disconnected"  # the listener hears it too
    assert manager.tools() == []
    await wait_until(lambda: stdio_children() == [], what="the process to end")
    disabled = await manager.call("srv__echo", {"text": "x"})
    assert disabled.is_error

    await manager.put(stdio_config("srv"))
    await wait_until(lambda: connected(manager, "srv"), what="enabled again")
    await manager.remove("srv")
    assert manager.status() == []
    await manager.apply([])
    assert manager.status() == []


async def test_disconnect_and_connect_by_hand(manager: McpManager) -> None:
    await manager.apply([stdio_config("srv")])
    await wait_until(lambda: connected(manager, "srv"), what="connected")
    assert await manager.disconnect("srv")
    state = manager.state("srv")
    assert state is not None and state.status == "disconnected"
    await manager.apply([stdio_config("srv")])  # an unchanged config does not undo a manual disconnect
    assert not connected(manager, "srv")
    assert await manager.connect("srv")
    await wait_until(lambda: connected(manager, "srv"), what="connected again")
    assert not await manager.connect("missing")


async def test_no_auto_reconnect_waits_for_a_reconnect(manager: McpManager, servers: list[HttpServer]) -> None:
    remote = await http_server(servers, "http", "srv")
    await manager.apply([remote.config(autoReconnect=False)])
    await wait_until(lambda: connected(manager, "srv"), what="connected")
    remote.kill()
    await wait_until(lambda: (manager.state("srv") or McpServerState(name="")).status == "error", what="error")
    await remote.start()
    state = manager.state("srv")
    assert state is not None and state.status == "error"  # no retry on its own
    assert await manager.reconnect("srv")
    await wait_until(lambda: connected(manager, "srv"), what="reconnected by hand")


async def test_reconnect_while_connected_is_no_failure(manager: McpManager, recorder: Recorder) -> None:
    await manager.apply([stdio_config("srv")])
    await wait_until(lambda: connected(manager, "srv"), what="connected")
    [child] = stdio_children()
    recorder.states.clear()
    assert await manager.reconnect("srv")
    await wait_until(lambda: "connected" in recorder.seen("srv"), what="connected again")
    assert "error" not in recorder.seen("srv")
    assert recorder.seen("srv")[0] == "connecting"
    assert [c.pid for c in stdio_children()] != [child.pid]
    assert (await manager.call("srv__echo", {"text": "fresh"})).text == "fresh"
