"""Plugin archives for the tests: the example plugin packed, variants of it, and hostile zips."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import httpx

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "echo-weather"

# A plugin whose tools misbehave on purpose: `hang` never answers, `boom` fails; `CRASH=1` in its
# config makes the process exit before it speaks MCP.
MISBEHAVING = """
import json, os, sys, time
config = json.loads(os.environ.get("CHATBUS_PLUGIN_CONFIG") or "{}")
if config.get("crash"):
    print("crashing on purpose", file=sys.stderr)
    sys.exit(3)
from mcp.server.mcpserver import MCPServer
app = MCPServer("bad")

@app.tool()
def hang(text: str = "", userId: str = "", groupId: str | None = None, platform: str = "") -> str:
    time.sleep(3600)
    return "never"

@app.tool()
def env(text: str = "", userId: str = "", groupId: str | None = None, platform: str = "") -> str:
    import resource
    keys = sorted(k for k in os.environ if k.startswith("CHATBUS") or "URL" in k or "DATABASE" in k)
    limits = [resource.getrlimit(r)[0] for r in (resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_NOFILE)]
    return json.dumps({"keys": keys, "limits": limits, "home": os.environ.get("HOME"), "cwd": os.getcwd()})

app.run()
"""


def zip_files(files: dict[str, bytes | str], *, links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def example_manifest(**changes: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((EXAMPLE / "chatbus-plugin.json").read_text())
    manifest.update(changes)
    return manifest


def example_zip(**changes: Any) -> bytes:
    files: dict[str, bytes | str] = {"server.py": (EXAMPLE / "server.py").read_bytes()}
    files["chatbus-plugin.json"] = json.dumps(example_manifest(**changes))
    return zip_files(files)


def misbehaving_zip(name: str = "bad", **changes: Any) -> bytes:
    manifest = {
        "name": name,
        "version": "1",
        "entry": ["python", "server.py"],
        "timeout": 1,
        "commands": [{"name": "hang", "tool": "hang"}, {"name": "env", "tool": "env"}],
        "configSchema": {"type": "object", "properties": {"crash": {"type": "boolean"}}},
        **changes,
    }
    return zip_files({"chatbus-plugin.json": json.dumps(manifest), "server.py": MISBEHAVING})


async def upload(client: httpx.AsyncClient, data: bytes, *, overwrite: bool = False) -> httpx.Response:
    params = {"overwrite": "true"} if overwrite else {}
    return await client.post("/api/plugins/upload", params=params, files={"file": ("p.zip", data, "application/zip")})
