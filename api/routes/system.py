"""GET /health (public)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, get

from api.envelope import encode, error_body, ok
from api.security import require_admin
from api.state import Edge, edge_of
from bus.heartbeat import live_instances
from services.system import queries as system_queries

CHECK_TIMEOUT = 2.0
VERSION = "0.1.0"


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


@get("/api/system/status", guards=[require_admin], tags=["system"])
async def system_status(request: Request[Any, Any, Any]) -> Response[bytes]:
    edge = edge_of(request)

    async def jetstream_check() -> None:
        await edge.nc.jetstream().account_info()

    checks = await run_checks(edge)
    checks["jetstream"] = await _timed(jetstream_check())
    try:
        found = await live_instances(edge.nc)
    except Exception as exc:  # the bus is away: say so rather than fail the whole status
        found = []
        checks["jetstream"] = {"ok": False, "error": type(exc).__name__}
    components = {"nats": checks["nats"], "jetstream": checks["jetstream"], "postgres": checks["postgres"]}
    supervisor = system_queries.supervisor_component(found)
    if supervisor is not None:
        components["supervisor"] = supervisor
    instances = [{k: v for k, v in msgspec.to_builtins(i).items() if k != "children"} for i in found]
    now = time.time()
    return ok(
        {
            "version": VERSION,
            "startedAt": datetime.fromtimestamp(edge.started_at, UTC).isoformat(),
            "uptime": round(now - edge.started_at, 1),
            "components": components,
            "instances": instances,
        }
    )


@get("/api/system/stats", guards=[require_admin], tags=["system"])
async def system_stats(request: Request[Any, Any, Any]) -> Response[bytes]:
    return ok(await system_queries.stats(edge_of(request).pool))
