"""echo-weather: an example chatbus plugin. A plugin is an MCP server over stdio; chatbus starts it
with its config in CHATBUS_PLUGIN_CONFIG (JSON) and calls its tools with
{text, userId, groupId, platform} when a chat message names one of its commands."""

from __future__ import annotations

import json
import os
import zlib

from mcp.server.mcpserver import MCPServer

CONFIG = json.loads(os.environ.get("CHATBUS_PLUGIN_CONFIG") or "{}")
app = MCPServer("echo-weather")


@app.tool()
def weather(text: str = "", userId: str = "", groupId: str | None = None, platform: str = "") -> str:
    """The weather of a city (made up, the same for the same city: an example needs no network)."""
    city = text.strip() or CONFIG.get("defaultCity") or "Beijing"
    celsius = zlib.crc32(city.encode()) % 35
    unit = CONFIG.get("unit", "C")
    value = celsius if unit == "C" else round(celsius * 9 / 5 + 32)
    greeting = CONFIG.get("greeting", "")
    return f"{greeting}{city}: {value}°{unit}".strip()


@app.tool()
def echo(text: str = "", userId: str = "", groupId: str | None = None, platform: str = "") -> str:
    """Say the text back."""
    return f"{CONFIG.get('greeting', '')}{text}"


if __name__ == "__main__":
    app.run()
