"""The MCP client layer (official `mcp` SDK 2.x): configs in schemas/mcp.py, the stdio allow-list,
one owner task per server (session.py) and the per-process manager (manager.py).

Nothing here imports the SDK up front: session.py (the only module that does) loads with the first
server a process actually runs, so an edge or a worker with no MCP server never pays for it."""
