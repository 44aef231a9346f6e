"""The MCP stdio allow-list (DESIGN.md "Tools and MCP"): argv prefixes a stdio MCP server may start
with. It comes from the host (CHATBUS_MCP_STDIO_ALLOW, else `<data dir>/mcp-stdio-allow`), never from
the config API, so an admin token does not equal arbitrary command execution."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

ENV = "CHATBUS_MCP_STDIO_ALLOW"
FILE = "mcp-stdio-allow"


def _parse(lines: list[str]) -> tuple[tuple[str, ...], ...]:
    prefixes = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            argv = tuple(shlex.split(line))
            if argv:
                prefixes.append(argv)
    return tuple(prefixes)


def stdio_allow_list(data_dir: str | Path | None = None) -> tuple[tuple[str, ...], ...]:
    """The effective allow-list: CHATBUS_MCP_STDIO_ALLOW (entries separated by `,`, each an argv prefix
    such as `npx -y` or `uvx`) when set, else the data dir's file (one prefix a line, `#` comments),
    else nothing is allowed."""
    raw = os.environ.get(ENV)
    if raw is not None:
        return _parse(raw.split(","))
    folder = Path(data_dir if data_dir is not None else os.environ.get("CHATBUS_DATA_DIR", "./.chatbus"))
    try:
        return _parse((folder / FILE).read_text().splitlines())
    except FileNotFoundError:
        return ()


def allows(argv: list[str] | tuple[str, ...], allow: tuple[tuple[str, ...], ...]) -> bool:
    """Whether argv starts with one of the allowed prefixes (whole words)."""
    return any(len(argv) >= len(prefix) and tuple(argv[: len(prefix)]) == prefix for prefix in allow)
