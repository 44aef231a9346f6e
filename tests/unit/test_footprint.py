"""What each role's process imports (issue 13: idle RSS): a worker carries no edge code, and no process
loads the MCP SDK or pydantic until an MCP server or plugin actually runs, nor aiohttp before its first
LLM call. Checked in a fresh interpreter, since this test process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("mcp", "pydantic", "starlette", "rich", "pygments", "aiohttp")
EDGE_ONLY = ("api", "litestar", "uvicorn")


def loaded_after(code: str) -> set[str]:
    """The top-level packages imported by `code`, run the way the CLI runs it (chatbus.cli first)."""
    listing = "print(json.dumps(sorted({m.split('.')[0] for m, v in sys.modules.items() if v is not None})))"
    script = f"import sys, json\nimport chatbus.cli\n{code}\n{listing}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_worker_with_the_relay_imports_no_edge_code_and_no_mcp_sdk() -> None:
    loaded = loaded_after(
        "from chatbus.runtime import start_workers, start_relay\n"
        "import services.registry, services.pipeline.worker, bus.relay"
    )
    assert "services" in loaded and "bus" in loaded  # the check would pass vacuously otherwise
    assert loaded.isdisjoint(EDGE_ONLY + HEAVY), sorted(loaded & set(EDGE_ONLY + HEAVY))


def test_the_edge_app_is_built_without_the_mcp_sdk_or_pydantic() -> None:
    loaded = loaded_after(
        "from chatbus.edgerun import edge_config\n"
        "from api.app import create_app\n"
        "app = create_app(edge_config('nats://127.0.0.1:1', 'postgresql://x@127.0.0.1:1/x', 's' * 40))\n"
        "assert app.openapi_schema.paths"
    )
    assert "litestar" in loaded
    heavy = set(HEAVY) - {"starlette"}  # Litestar's OpenAPI code imports starlette.exceptions, a small module
    assert loaded.isdisjoint(heavy), sorted(loaded & heavy)


def test_the_up_supervisor_imports_no_domain_code() -> None:
    # What `chatbus up` itself holds for its whole life; the bootstrap runs in a child (`migrate --for-up`).
    loaded = loaded_after("import chatbus.up, bus.nats_conn, bus.heartbeat, bus.commands")
    assert "nats" in loaded
    heavy = {"services", "api", "litestar", "uvicorn", "asyncpg", "cryptography", "httpx", *HEAVY}
    assert loaded.isdisjoint(heavy), sorted(loaded & heavy)


def test_the_edge_app_is_built_without_worker_code_or_an_llm_client() -> None:
    # What `chatbus edge` imports (cli._edge): chatbus.edgerun, not chatbus.runtime and its registry.
    loaded = loaded_after(
        "from chatbus.edgerun import edge_config, uvicorn_config\n"
        "uvicorn_config(edge_config('nats://127.0.0.1:1', 'postgresql://x@127.0.0.1:1/x', 's' * 40), '127.0.0.1', 1)"
    )
    assert "uvicorn" in loaded and "services" in loaded
    assert loaded.isdisjoint({"httpx", "aiohttp", "watchfiles"}), sorted(loaded & {"httpx", "aiohttp", "watchfiles"})


def test_jwt_loads_without_x509_and_still_signs_and_checks_hs256() -> None:
    loaded = loaded_after(
        "from services.auth import tokens\n"
        "import jwt.algorithms, sys\n"
        "assert not jwt.algorithms.has_crypto and 'cryptography.x509' not in sys.modules\n"
        "token, _ = tokens.issue('s' * 40, 'admin', 'admin', ttl=60)\n"
        "assert tokens.decode('s' * 40, token).sub == 'admin'"
    )
    assert "jwt" in loaded
