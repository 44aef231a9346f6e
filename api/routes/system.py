"""GET /health (public)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Request, Response, get

from api.envelope import encode, error_body, ok
from api.state import Edge, edge_of

CHECK_TIMEOUT = 2.0


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT)
        return {"ok": True, "latencyMs": round((time.perf_counter() - started) * 1000, 2)}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


async def run_checks(edge: Edge) -> dict[str, dict[str, Any]]:
    async def nats_check() -> None:
        if not edge.nc.is_connected:
            raise ConnectionError("not connected")
        await edge.nc.flush(timeout=int(CHECK_TIMEOUT))

    nats_result, pg_result = await asyncio.gather(_timed(nats_check()), _timed(edge.pool.fetchval("SELECT 1")))
    return {"nats": nats_result, "postgres": pg_result}


@get("/health", tags=["system"])
async def health(request: Request[Any, Any, Any]) -> Response[bytes]:
    checks = await run_checks(edge_of(request))
    if all(c["ok"] for c in checks.values()):
        return ok({"status": "ok", "checks": checks})
    body = error_body("UNAVAILABLE", "degraded: a dependency is down", data={"status": "degraded", "checks": checks})
    return Response(content=encode(body), status_code=503, media_type="application/json")
