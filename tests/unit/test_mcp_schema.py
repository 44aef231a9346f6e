"""MCP server configs: every client spelling, Claude Desktop import, masking, tool names."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from schemas.errors import DomainError
from schemas.mcp import McpServerConfig, keep_masked_secrets, masked, normalize_server, parse_import
from services.tools.mcp.manager import qualified_names


def test_flat_stdio() -> None:
    c = normalize_server({"name": "time", "command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}})
    assert (c.type, c.command, c.args, c.env, c.enabled, c.auto_reconnect) == (
        "stdio",
        "uvx",
        ["mcp-server-time"],
        {"TZ": "UTC"},
        True,
        True,
    )


def test_chatai_nested_shape() -> None:
    c = normalize_server(
        {"name": "web", "config": {"type": "sse", "url": "http://127.0.0.1:9/sse", "headers": {"Authorization": "x"}}}
    )
    assert (c.name, c.type, c.url, c.headers) == ("web", "sse", "http://127.0.0.1:9/sse", {"Authorization": "x"})


def test_npm_means_npx() -> None:
    c = normalize_server({"name": "ev", "config": {"type": "npm", "package": "@mcp/server-everything", "args": ["x"]}})
    assert (c.type, c.command, c.args) == ("stdio", "npx", ["-y", "@mcp/server-everything", "x"])


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"url": "http://h/mcp"}, "http"),
        ({"url": "http://h/sse"}, "sse"),
        ({"url": "http://h/mcp", "transport": "streamable-http"}, "http"),
        ({"url": "http://h/mcp", "type": "streamableHttp"}, "http"),
        ({"command": "uvx", "transport": "stdio"}, "stdio"),
    ],
)
def test_type_spellings(body: dict[str, Any], kind: str) -> None:
    assert normalize_server({"name": "s", **body}).type == kind


def test_read_only_fields_sent_back_are_dropped_and_ms_timeouts_become_seconds() -> None:
    c = normalize_server(
        {"name": "s", "url": "http://h/mcp", "status": "connected", "toolsCount": 3, "timeout": 30000, "command": ""}
    )
    assert c.timeout == 30.0
    assert normalize_server({"name": "s", "url": "http://h/mcp", "timeout": 45}).timeout == 45.0


@pytest.mark.parametrize(
    "body",
    [
        {"name": "s"},
        {"name": "s", "type": "stdio"},
        {"name": "s", "type": "sse"},
        {"name": "s", "type": "ftp", "url": "http://h"},
        {"name": "s", "type": "npm"},
        {"name": "s", "url": "file:///etc/passwd"},
        {"name": "s", "url": "javascript:alert(1)"},
        {"name": "s", "command": "uvx", "args": "mcp-server-time"},
        {"name": "s", "command": "uvx", "url": "http://h/mcp"},
        {"name": "s", "type": "http", "url": "http://h/mcp", "command": "uvx"},
        {"name": "s", "command": "uvx", "args": ["a\0b"]},
        {"name": "s", "command": "uvx", "timeout": -1},
        {"name": "s", "command": "uvx", "timeout": True},
        {"name": "s", "command": "uvx", "surprise": 1},
        {"name": "../x", "command": "uvx"},
        {"name": "", "command": "uvx"},
        {"name": "x" * 65, "command": "uvx"},
        {"name": "s", "config": "nope"},
        {"name": "s", "command": "uvx", "env": {"K": 1}},
    ],
)
def test_invalid_bodies_are_invalid_args(body: dict[str, Any]) -> None:
    with pytest.raises(DomainError) as exc:
        normalize_server(body)
    assert exc.value.code == "INVALID_ARGS"
    assert "Traceback" not in exc.value.message


def test_claude_desktop_import() -> None:
    doc = {
        "mcpServers": {
            "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
            "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer t"}},
            "legacy-sse": {"url": "https://example.com/sse"},
            "typed": {"type": "http", "url": "https://example.com/x"},
            "off": {"command": "uvx", "args": ["x"], "disabled": True},
            "bad name!": {"command": "uvx"},
            "broken": {"args": ["x"]},
            "notobj": [1],
        }
    }
    result = parse_import(doc)
    got = {c.name: c for c in result.configs}
    assert set(got) == {"time", "remote", "legacy-sse", "typed", "off"}
    assert (got["time"].type, got["time"].env) == ("stdio", {"TZ": "UTC"})
    assert (got["remote"].type, got["legacy-sse"].type, got["typed"].type) == ("http", "sse", "http")
    assert got["off"].enabled is False
    assert sorted(e["name"] for e in result.errors) == ["bad name!", "broken", "notobj"]
    assert result.total == 8


@pytest.mark.parametrize("doc", [[], {"servers": 3}, {"other": {}}])
def test_import_document_must_have_servers(doc: Any) -> None:
    with pytest.raises(DomainError):
        parse_import(doc)


def test_secrets_are_masked_and_a_masked_value_sent_back_keeps_the_stored_one() -> None:
    stored = normalize_server(
        {
            "name": "s",
            "url": "https://user:hunter2secret@example.com/mcp",
            "headers": {"Authorization": "Bearer sk-verylongsecret1234"},
        }
    )
    shown = masked(stored)
    assert "verylongsecret" not in msgspec.json.encode(shown).decode()
    assert "hunter2" not in shown["url"]
    assert shown["headers"]["Authorization"].endswith("1234")
    back = normalize_server({**shown, "headers": {**shown["headers"], "X-New": "v"}})
    merged = keep_masked_secrets(stored, back)
    assert merged.headers == {"Authorization": "Bearer sk-verylongsecret1234", "X-New": "v"}
    assert merged.url == stored.url
    env = normalize_server({"name": "e", "command": "uvx", "env": {"GITHUB_TOKEN": "ghp_abcdefghijkl"}})
    assert masked(env)["env"]["GITHUB_TOKEN"] != "ghp_abcdefghijkl"


def test_config_roundtrips_through_json() -> None:
    c = normalize_server({"name": "s", "command": "uvx", "args": ["a"], "autoReconnect": False})
    assert msgspec.json.decode(msgspec.json.encode(c), type=McpServerConfig) == c
    assert b'"autoReconnect":false' in msgspec.json.encode(c)


def test_qualified_names_are_unique_safe_and_short() -> None:
    pairs = [
        ("a", "echo"),
        ("b", "echo"),
        ("x.y", "t"),
        ("x_y", "t"),  # collides with the one above after sanitising
        ("long" * 10, "tool" * 10),
        ("long" * 10, "tool" * 10 + "2"),  # collides after truncation
    ]
    names = qualified_names(pairs)
    assert names[("a", "echo")] == "a__echo"
    assert names[("b", "echo")] == "b__echo"
    assert len(set(names.values())) == len(pairs)
    for name in names.values():
        assert len(name) <= 64
        assert all(ch.isalnum() or ch in "_-" for ch in name)
    # stable: the same pair keeps its name whatever else is configured
    assert qualified_names(pairs[2:4])[("x.y", "t")] == names[("x.y", "t")]
