"""The strict body check (api/bodycheck.py) hands its decoded body to the handler: one parse per request."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
from litestar import Litestar, Request, post
from litestar.testing import TestClient

from api.bodycheck import check_request_body
from api.envelope import ApiError, handle_api_error


class Body(msgspec.Struct):
    name: str
    enabled: bool = False
    made: ClassVar[int] = 0

    def __post_init__(self) -> None:  # runs on every decode and conversion, not on a pass-through
        type(self).made += 1


@post("/typed")
async def typed(data: Body) -> dict[str, Any]:
    return {"name": data.name, "enabled": data.enabled}


@post("/free")
async def free(request: Request[Any, Any, Any], data: Any) -> dict[str, Any]:
    return {"data": data}


def client() -> TestClient[Litestar]:
    app = Litestar([typed, free], before_request=check_request_body, exception_handlers={ApiError: handle_api_error})
    return TestClient(app)


def test_a_typed_body_is_decoded_once() -> None:
    Body.made = 0
    with client() as c:
        r = c.post("/typed", json={"name": "a", "enabled": True})
    assert r.status_code == 201 and r.json() == {"name": "a", "enabled": True}
    assert Body.made == 1


def test_the_strict_check_still_refuses_what_litestar_would_convert() -> None:
    with client() as c:
        r = c.post("/typed", json={"name": "a", "enabled": 0})
        free_r = c.post("/free", json={"x": [1, {"y": None}]})
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR"
    assert free_r.status_code == 201 and free_r.json() == {"data": {"x": [1, {"y": None}]}}
