"""The ceiling of the HTTP layer: one bare Litestar JSON route, served exactly like the edge.

`python -m tests.bench.bare_app --port P` serves `GET /bare` with the edge's envelope shape, encoded
the way `api.envelope.ok` encodes it, under the uvicorn options of `chatbus.runtime.uvicorn_config`."""

from __future__ import annotations

import argparse

import msgspec
import uvicorn
from litestar import Litestar, Response, get

_encoder = msgspec.json.Encoder()
DATA = {"id": "bare", "name": "bare route", "version": 1, "enabled": True}


@get("/bare")
async def bare() -> Response[bytes]:
    body = _encoder.encode({"success": True, "status": "success", "data": DATA})
    return Response(content=body, status_code=200, media_type="application/json")


app = Litestar(route_handlers=[bare], debug=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The same options as chatbus.runtime.uvicorn_config (which builds the edge app itself).
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
