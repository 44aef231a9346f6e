"""The MCP client layer (official `mcp` SDK 2.x): configs in schemas/mcp.py, the stdio allow-list,
one owner task per server (session.py) and the per-process manager (manager.py)."""

from services.tools.mcp.allowlist import AllowList, check_stdio, load_allow_list
from services.tools.mcp.manager import McpManager, qualified_names
from services.tools.mcp.session import McpConnection

__all__ = ["AllowList", "McpConnection", "McpManager", "check_stdio", "load_allow_list", "qualified_names"]
