"""Request-body checks every route gets before its handler runs (API.md §1): a JSON body is valid UTF-8
and nested at most MAX_JSON_DEPTH deep, a JSON route refuses another content type (415), and a typed body
is decoded strictly (`enabled: 0` is not a boolean).

Litestar itself converts `data` with `msgspec.convert(..., strict=False)` (it shares that path with query
strings, where "1" must become 1), and lets a decoder's UnicodeDecodeError or RecursionError escape as a
500. This hook runs after the guards and before Litestar reads `data`, decodes the body strictly once and
answers 400 itself; Litestar's `data` is then that decoded value (no second parse)."""

from __future__ import annotations

import itertools
import operator
import re
import weakref
from typing import Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

from api.envelope import MISSING_FIELD, ApiError

MAX_JSON_DEPTH = 64
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_OPEN_CLOSE = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def media_type_of(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays/objects nest deeper than `limit`, without parsing (a deep document is what makes a
    recursive parser fail). Strings are cut out first, so brackets inside them do not count."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    # Opening brackets become 2 and closing ones 0: the depth after k brackets is their sum minus k.
    brackets = _STRING.sub(b"", raw).translate(_OPEN_CLOSE, _NOT_BRACKETS)
    return max(map(operator.sub, itertools.accumulate(brackets), itertools.count(1)), default=0) > limit


def check_json_bytes(raw: bytes) -> None:
    """400 for a JSON body that is not UTF-8 or nests too deep (either would be a 500 in the decoder)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError("VALIDATION_ERROR", f"the body is not valid UTF-8 (byte {exc.start})") from exc
    if json_too_deep(raw):
        raise ApiError("VALIDATION_ERROR", f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")


class _BodyRule(msgspec.Struct):
    json_route: bool  # the handler takes a JSON `data` body
    decoder: msgspec.json.Decoder[Any] | None


# Weakly keyed: several apps in one process (the tests) come and go, and a rule dies with its handler.
_rules: weakref.WeakKeyDictionary[Any, _BodyRule] = weakref.WeakKeyDictionary()


def _rule(request: Request[Any, Any, Any]) -> _BodyRule:
    handler = request.route_handler
    if (cached := _rules.get(handler)) is not None:
        return cached
    field = handler.parsed_fn_signature.parameters.get("data")
    media = getattr(field.kwarg_definition, "media_type", None) if field is not None else None
    json_route = field is not None and media in (None, RequestEncodingType.JSON)
    # A route typed `data: Any` validates its body itself: a strict decode would only parse it twice.
    typed = json_route and field is not None and field.annotation is not Any
    decoder = msgspec.json.Decoder(field.annotation, strict=True) if typed and field is not None else None
    rule = _BodyRule(json_route, decoder)
    _rules[handler] = rule
    return rule


def _details(exc: msgspec.ValidationError) -> list[dict[str, Any]]:
    reason, _, where = str(exc).partition(" - at `$")
    field = where.rstrip("`").replace("[", ".").replace("]", "").lstrip(".")
    if missing := MISSING_FIELD.search(reason):
        field = f"{field}.{missing.group(1)}" if field else missing.group(1)
    return [{"field": field or "body", "reason": reason, "source": "body"}]


async def check_request_body(request: Request[Any, Any, Any]) -> None:
    """The app's `before_request` hook: returns None (the handler runs) or raises ApiError."""
    if request.method in _BODYLESS:
        return
    media = media_type_of(request)
    rule = _rule(request)
    if media and not is_json(media):
        if rule.json_route and await request.body():
            raise ApiError("UNSUPPORTED_MEDIA_TYPE", f"this route takes application/json, not {media}", status=415)
        return  # multipart, YAML, ...: the route reads it itself
    raw = await request.body()
    if not raw:
        return
    check_json_bytes(raw)
    if rule.decoder is not None:
        try:
            decoded = rule.decoder.decode(raw)
        except msgspec.ValidationError as exc:
            details = _details(exc)
            raise ApiError(
                "VALIDATION_ERROR", f"invalid request: {details[0]['field']}: {details[0]['reason']}", details=details
            ) from exc
        except msgspec.DecodeError as exc:
            raise ApiError("VALIDATION_ERROR", f"the body is not valid JSON: {exc}") from exc
        # Litestar's `request.json()` answers from the connection state when it is set: the handler's
        # `data` is then this value (msgspec.convert passes an instance of the target type through)
        # instead of a second parse of the body and a conversion of the result.
        state = ScopeState.from_scope(request.scope)
        if state.json is Empty:
            state.json = decoded


async def json_object_body(request: Request[Any, Any, Any], *, max_bytes: int) -> dict[str, Any]:
    """A free-form JSON object body (config documents): size, syntax and shape checked, errors enveloped."""
    media = media_type_of(request)
    if media and not is_json(media):
        raise ApiError("UNSUPPORTED_MEDIA_TYPE", f"this route takes application/json, not {media}", status=415)
    raw = await request.body()
    if len(raw) > max_bytes:
        raise ApiError("PAYLOAD_TOO_LARGE", f"body larger than {max_bytes} bytes", status=413)
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ApiError("PARSE_ERROR", f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError("VALIDATION_ERROR", "the body must be a JSON object")
    return body
