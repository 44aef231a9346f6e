"""A small real MCP server (the SDK's MCPServer) for the MCP client tests.

Run: `python -m tests.fakes.mcp_server [stdio|sse|http] [port] [name]`. Tools:
- `echo {text}` -> the text; `add {a, b}` -> the sum; `whoami` -> the server's name (two servers share
  the tool names, so a test can tell which one answered);
- `slow {seconds}` sleeps (per-call timeout tests);
- `grow {name}` adds a tool `<name>` (answers "grown:<name>") and sends notifications/tools/list_changed;
- `fail` raises (an is_error result, not a protocol error).
One resource (`fake://readme`) and one prompt (`greet`) so resource/prompt counts are non-zero.
"""

from __future__ import annotations

import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer


def build(name: str = "fake") -> MCPServer:
    app = MCPServer(name)

    @app.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    @app.tool()
    def add(a: float, b: float) -> str:
        """Add two numbers."""
        return str(a + b)

    @app.tool()
    def whoami() -> str:
        """The server's name."""
        return name

    @app.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer."""
        await anyio.sleep(seconds)
        return "done"

    @app.tool()
    def fail() -> str:
        """Always fails."""
        raise RuntimeError("this tool always fails")

    @app.tool()
    async def grow(tool: str, ctx: Context) -> str:
        """Add a tool and announce the change."""

        def grown() -> str:
            return f"grown:{tool}"

        app.add_tool(grown, name=tool, description="added at run time")
        await ctx.request_context.session.send_tool_list_changed()
        return "ok"

    @app.resource("fake://readme")
    def readme() -> str:
        """A static resource."""
        return "hello"

    @app.prompt()
    def greet(who: str) -> str:
        """A prompt."""
        return f"Say hello to {who}"

    return app


def main(argv: list[str]) -> None:
    transport = argv[0] if argv else "stdio"
    port = int(argv[1]) if len(argv) > 1 else 0
    name = argv[2] if len(argv) > 2 else "fake"
    app = build(name)
    if transport == "stdio":
        app.run()
    elif transport == "sse":
        app.run("sse", host="127.0.0.1", port=port)
    else:
        app.run("streamable-http", host="127.0.0.1", port=port)


if __name__ == "__main__":
    main(sys.argv[1:])
