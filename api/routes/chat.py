"""Conversations and chat (API.md §6), both dialects. The edge sends `cmd.chat.send` to the chat
workers; for a streamed turn it first subscribes to `chat.stream.<id>`, so no first token is lost,
and a client that goes away does not stop the reply from being stored."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import Parameter
from litestar.response import Stream
from nats.aio.msg import Msg

from api import commands
from api.envelope import ApiError, ok, request_id
from api.pagination import PageNumber, PageSize, page
from api.security import principal_of
from api.state import edge_of
from bus import subjects
from schemas.chat import ChatBody, ConversationId, NekoLlmChatBody, NekoSendBody, SessionBody
from services.chat import queries

Frame = dict[str, Any]
_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode
SILENCE_LIMIT = 10.0  # seconds without a frame; workers send a keepalive every 2 s during a turn
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def new_conversation_id(request: Request[Any, Any, Any] | None = None) -> str:
    """A fresh `web:` id; with an Idempotency-Key, the same one for every retry of the request, so a
    retried turn that failed half-way continues in the conversation its first try started."""
    key = commands.idempotency_key(request) if request is not None else None
    if request is not None and key is not None:
        return f"web:{commands.command_id(request, principal_of(request).username, 'chat.conversation', key).hex}"
    return f"web:{uuid.uuid4().hex}"


def conversation_for(request: Request[Any, Any, Any], given: str | None) -> tuple[str, bool]:
    """The turn's conversation id, and whether it was just drawn at random (so nothing is stored under
    it: the worker skips reading it back). An Idempotency-Key's id may come again, so it is not new."""
    if given:
        return given, False
    return new_conversation_id(request), commands.idempotency_key(request) is None


def _payload(body: ChatBody, conversation: tuple[str, bool]) -> dict[str, Any]:
    conversation_id, new = conversation
    return {
        "message": body.message,
        "conversation_id": conversation_id,
        "new_conversation": new,
        "user_id": body.user_id,
        "group_id": body.group_id,
        "preset_id": body.preset_id,
        "model": body.model,
        "channel_id": body.channel_id,
    }


async def chat_once(request: Request[Any, Any, Any], payload: dict[str, Any]) -> dict[str, Any]:
    reply = await commands.send(request, "chat", "send", payload, timeout=edge_of(request).config.chat_timeout)
    result: dict[str, Any] = reply.result
    return result


async def stream_turn(
    request: Request[Any, Any, Any], payload: dict[str, Any], render: Callable[[Frame], bytes | None]
) -> Stream:
    edge = edge_of(request)
    subject = subjects.chat_stream(f"{request_id(request)}.{uuid.uuid4().hex[:8]}")
    frames: asyncio.Queue[Frame] = asyncio.Queue()

    async def on_frame(msg: Msg) -> None:
        await frames.put(_decode(msg.data))

    # Subscribe before the command goes out on the same connection: the server sees the interest first.
    sub = await edge.nc.subscribe(subject, cb=on_frame)
    command = asyncio.create_task(
        commands.send(request, "chat", "send", {**payload, "stream_subject": subject}, timeout=edge.config.chat_timeout)
    )

    def finished(task: asyncio.Task[Any]) -> None:
        # A refusal that produced no frame (no worker, bad input) still ends the stream with an error.
        exc = task.exception() if not task.cancelled() else None
        if isinstance(exc, ApiError):
            frames.put_nowait({"type": "error", "code": exc.code, "message": exc.message, "_final": True})
        elif exc is not None:
            frames.put_nowait({"type": "error", "code": "INTERNAL_ERROR", "message": "chat failed", "_final": True})
        else:
            # Normally the end frame came first; a retried turn answered from its stored result sends none.
            frames.put_nowait({"type": "end", **(task.result().result or {})})

    command.add_done_callback(finished)

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                try:
                    # A timeout scope, not wait_for: no task of its own for every frame.
                    async with asyncio.timeout(SILENCE_LIMIT):
                        frame = await frames.get()
                except TimeoutError:
                    # No token and no keepalive: the worker holding the turn is gone. The client may retry
                    # with the same Idempotency-Key; the turn is then neither repeated nor answered twice.
                    frame = {"type": "error", "code": "TIMEOUT", "message": "the chat worker stopped answering; retry"}
                if frame["type"] == "keepalive":
                    continue
                frame.pop("_final", None)
                rendered = render(frame)
                if rendered is not None:
                    yield rendered
                if frame["type"] in ("end", "error"):
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    return Stream(body(), media_type="text/event-stream", headers=SSE_HEADERS)


def chatai_frame(frame: Frame) -> bytes:
    return b"data: " + _encode(frame) + b"\n\n"


def neko_frame(frame: Frame) -> bytes | None:
    kind = frame["type"]
    if kind == "content":
        return b"data: " + _encode({"type": "plain", "text": frame["text"]}) + b"\n\n"
    if kind == "end":
        return b"data: " + _encode({"type": "end"}) + b"\n\n"
    if kind == "error":
        return b"data: " + _encode({"type": "error", "message": frame.get("message", "")}) + b"\n\n"
    return None


class ChatController(Controller):
    tags = ["chat"]

    @post("/api/chat", status_code=200)
    async def chat(self, request: Request[Any, Any, Any], data: ChatBody) -> Response[Any]:
        payload = _payload(data, conversation_for(request, data.conversation_id))
        if data.stream:
            return await stream_turn(request, payload, chatai_frame)
        return ok(await chat_once(request, payload))

    @post("/api/chat/stream", status_code=200)
    async def chat_stream(self, request: Request[Any, Any, Any], data: ChatBody) -> Stream:
        return await stream_turn(request, _payload(data, conversation_for(request, data.conversation_id)), chatai_frame)

    @post("/api/llm/chat", status_code=200)
    async def llm_chat(self, request: Request[Any, Any, Any], data: NekoLlmChatBody) -> Response[bytes]:
        conversation_id, new = conversation_for(request, data.session_id)
        payload = {
            "message": data.message,
            "conversation_id": conversation_id,
            "new_conversation": new,
            "model": data.model,
            "channel_id": data.provider_id,
        }
        result = await chat_once(request, payload)
        return ok({**result, "session_id": conversation_id})

    @get("/api/conversations")
    async def list_conversations(
        self,
        request: Request[Any, Any, Any],
        page_number: PageNumber = 1,
        page_size: PageSize = 20,
        user_id: Annotated[str | None, Parameter(query="userId", max_length=100)] = None,
        group_id: Annotated[str | None, Parameter(query="groupId", max_length=100)] = None,
        platform: Annotated[str | None, Parameter(max_length=50)] = None,
    ) -> Response[bytes]:
        items, total = await queries.list_conversations(
            edge_of(request).pool,
            user_id=user_id,
            group_id=group_id,
            platform=platform,
            page=page_number,
            page_size=page_size,
        )
        return ok(page(items, total, page_number, page_size))

    @get("/api/conversations/{conversation_id:str}")
    async def get_conversation(
        self,
        request: Request[Any, Any, Any],
        conversation_id: str,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        before: Annotated[int | None, Parameter(ge=1)] = None,
    ) -> Response[bytes]:
        pool = edge_of(request).pool
        conversation = await queries.get_conversation(pool, conversation_id)
        if conversation is None:
            raise ApiError("CONVERSATION_NOT_FOUND", f"conversation '{conversation_id}' not found")
        return ok(
            {**conversation, "messages": await queries.messages(pool, conversation_id, limit=limit, before=before)}
        )

    @delete("/api/conversations/{conversation_id:str}", status_code=200)
    async def delete_conversation(self, request: Request[Any, Any, Any], conversation_id: str) -> Response[bytes]:
        reply = await commands.send(request, "chat", "delete", {"conversation_id": conversation_id})
        return commands.written(reply)

    @post("/api/conversations/{conversation_id:str}/clear", status_code=200)
    async def clear_conversation(self, request: Request[Any, Any, Any], conversation_id: str) -> Response[bytes]:
        reply = await commands.send(request, "chat", "clear", {"conversation_id": conversation_id})
        return commands.written(reply)


def _session_id(value: str | None) -> str:
    try:
        return msgspec.convert(value, ConversationId)
    except msgspec.ValidationError as exc:
        raise ApiError("VALIDATION_ERROR", "session_id is required: 1..200 characters of [A-Za-z0-9_:.@-]") from exc


class NekoChatController(Controller):
    """NekoBot's /chat/* session routes."""

    path = "/chat"
    tags = ["chat"]

    @post(["/new_session"], status_code=200)
    async def new_session_post(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await self._new_session(request)

    @get(["/new_session"])
    async def new_session_get(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await self._new_session(request)

    async def _new_session(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        session_id = new_conversation_id()
        await commands.send(
            request, "chat", "start", {"conversation_id": session_id, "creator": principal_of(request).username}
        )
        return ok({"session_id": session_id})

    @post("/send", status_code=200)
    async def send(self, request: Request[Any, Any, Any], data: NekoSendBody) -> Stream:
        # A session comes from /chat/new_session (its row is written before that answers): an unknown
        # id is a client error, not a new conversation under a name the client made up.
        if await queries.get_conversation(edge_of(request).pool, data.session_id) is None:
            raise ApiError("CONVERSATION_NOT_FOUND", f"session '{data.session_id}' not found")
        payload = {
            "message": data.message,
            "conversation_id": data.session_id,
            "model": data.selected_model,
            "channel_id": data.selected_provider,
        }
        return await stream_turn(request, payload, neko_frame)

    @get("/sessions")
    async def sessions(
        self, request: Request[Any, Any, Any], page_number: PageNumber = 1, page_size: PageSize = 20
    ) -> Response[bytes]:
        items, total = await queries.list_conversations(
            edge_of(request).pool, user_id=None, group_id=None, platform="web", page=page_number, page_size=page_size
        )
        # NekoBot's `sessions` key, with the paging fields of every list (API.md §2).
        return ok(
            {
                "total": total,
                "page": page_number,
                "page_size": page_size,
                "sessions": [
                    {
                        "id": c["id"],
                        "creator": c["creator"],
                        "created_at": c["createdAt"],
                        "message_count": c["messageCount"],
                    }
                    for c in items
                ],
            }
        )

    @get("/get_session")
    async def get_session(
        self, request: Request[Any, Any, Any], session_id: Annotated[str | None, Parameter(max_length=200)] = None
    ) -> Response[bytes]:
        sid = _session_id(session_id)
        pool = edge_of(request).pool
        conversation = await queries.get_conversation(pool, sid)
        if conversation is None:
            raise ApiError("CONVERSATION_NOT_FOUND", f"session '{sid}' not found")
        messages = await queries.messages(pool, sid, limit=500)
        return ok(
            {
                "session": {"id": sid, "creator": conversation["creator"], "created_at": conversation["createdAt"]},
                "messages": [
                    {"role": m["role"], "content": m["content"], "timestamp": m["timestamp"]} for m in messages
                ],
                "is_running": False,
            }
        )

    @delete("/delete_session", status_code=200)
    async def delete_session(
        self, request: Request[Any, Any, Any], session_id: Annotated[str | None, Parameter(max_length=200)] = None
    ) -> Response[bytes]:
        await commands.send(request, "chat", "delete", {"conversation_id": _session_id(session_id)})
        return ok(None)

    @post("/delete_session", status_code=200)
    async def delete_session_post(self, request: Request[Any, Any, Any], data: SessionBody) -> Response[bytes]:
        await commands.send(request, "chat", "delete", {"conversation_id": data.session_id})
        return ok(None)
