"""From an HTTP request to a bus command and back: envelope, idempotency key, If-Match, reply mapping."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

from litestar import Request, Response

from api.envelope import ApiError, ok, request_id
from api.security import client_ip, principal_of
from api.state import edge_of
from bus.commands import BusTimeout, BusUnavailable
from schemas.envelope import Actor, CommandEnvelope, CommandReply, command_encoder

log = logging.getLogger("chatbus.commands")

_KEY_NAMESPACE = uuid.UUID("0b9f5f3e-6a43-4f1e-9f61-0c1b8f7c2d11")
MAX_KEY_LENGTH = 200


def idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError("VALIDATION_ERROR", f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} printable characters")
    return key


async def request_hash(request: Request[Any, Any, Any]) -> str:
    """What an Idempotency-Key is bound to: the query and the body as sent, and If-Match."""
    digest = hashlib.sha256()
    for part in (request.url.query or "", request.headers.get("if-match", "")):
        digest.update(part.encode())
        digest.update(b"\x00")
    digest.update(await request.body())
    return digest.hexdigest()


def command_id(request: Request[Any, Any, Any], actor: str, command_type: str, key: str | None) -> uuid.UUID:
    if key is None:
        return uuid.uuid4()
    # Keys are scoped to the caller, the route and the command, so two users (or routes) never collide.
    return uuid.uuid5(_KEY_NAMESPACE, f"{actor}\x00{request.method}\x00{request.url.path}\x00{command_type}\x00{key}")


def if_match(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    cleaned = raw.strip().removeprefix("W/").strip('"')
    if not cleaned.isdigit():
        raise ApiError("VALIDATION_ERROR", "If-Match must be a version number, e.g. If-Match: 3")
    return int(cleaned)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


async def send(
    request: Request[Any, Any, Any],
    domain: str,
    action: str,
    payload: dict[str, Any],
    *,
    expected_version: int | None = None,
    anonymous: bool = False,
    idempotent: bool = True,
    timeout: float | None = None,
) -> CommandReply:
    """Send a command and return the successful reply; a refused one raises ApiError.

    `idempotent=False` ignores the Idempotency-Key (a command whose effect the edge completes after the
    reply, e.g. minting a token, must not be answered twice from a stored result)."""
    actor = (
        Actor("anonymous", "none") if anonymous else Actor(principal_of(request).username, principal_of(request).scope)
    )
    # Anonymous commands never take a key: a key anyone can send would replay another caller's login.
    key = idempotency_key(request) if idempotent and not anonymous else None
    envelope = CommandEnvelope(
        command_id=command_id(request, actor.subject, f"{domain}.{action}", key),
        request_hash=await request_hash(request) if key is not None else None,
        type=f"{domain}.{action}",
        actor=actor,
        payload=payload,
        expected_version=expected_version,
        request_id=request_id(request),
        client_ip=client_ip(request),
    )
    edge = edge_of(request)
    encoded = command_encoder.encode(envelope)
    # JSON writes a NUL as \u0000: without that text nowhere, the payload holds none (no walk through it).
    if b"\\u0000" in encoded and _has_nul(payload):
        raise ApiError("VALIDATION_ERROR", "text may not contain NUL (\\u0000) characters")
    # Checked here rather than left to the NATS client, which raises only after registering the reply.
    if (size := len(encoded)) > edge.nc.max_payload:
        raise ApiError("PAYLOAD_TOO_LARGE", f"the command ({size} bytes) exceeds the bus limit", status=413)
    try:
        reply = await edge.commands.send(domain, action, envelope, timeout=timeout, encoded=encoded)
    except BusUnavailable as exc:
        raise ApiError("UNAVAILABLE", f"service unavailable: {exc}", status=503) from exc
    except BusTimeout as exc:
        raise ApiError(
            "TIMEOUT", "the command timed out; retry with the same Idempotency-Key to be safe", status=504
        ) from exc
    finally:
        # Before the caller sees the answer (a timed-out command may have been committed all the same): its
        # next read on this edge must not be a page cached before the write (api/readcache.py).
        edge.pages.invalidate(domain)
    log.info("command %s -> %s", envelope.type, "ok" if reply.ok else getattr(reply.error, "code", "INTERNAL_ERROR"))
    if not reply.ok:
        err = reply.error
        if err is None:
            raise ApiError("INTERNAL_ERROR", "command failed", status=500)
        raise ApiError(err.code, err.message, status=err.status, details=err.details)
    return reply


def expected_version(request: Request[Any, Any, Any], body: dict[str, Any]) -> int | None:
    """`If-Match`, else a body's `expectedVersion` (removed from the body)."""
    header = if_match(request)
    given = body.pop("expectedVersion", None)
    if header is not None:
        return header
    if given is not None and (not isinstance(given, int) or isinstance(given, bool) or given < 0):
        raise ApiError("VALIDATION_ERROR", "expectedVersion must be a non-negative integer")
    return given


def written(reply: CommandReply, *, status: int = 200) -> Response[bytes]:
    """The answer to a write: the command's result, and its new version as `ETag` (every write alike)."""
    headers = {"ETag": f'"{reply.version}"'} if reply.version is not None else None
    return ok(reply.result, status=status, headers=headers)
