"""OneBot v11 as NapCat, Lagrange and go-cqhttp speak it (RESEARCH.md): pure parsing of event frames
and CQ-code strings, API call frames with a string echo, and `retcode` mapped to typed errors."""

from __future__ import annotations

import re
import time
from typing import Any

from schemas.platforms import InboundMessage, Sender

# retcode -> (chatbus error code, HTTP-like status). 1404: unknown action; 14xx: the caller's fault.
RETCODES: dict[int, str] = {1400: "INVALID_ARGS", 1401: "FORBIDDEN", 1403: "FORBIDDEN", 1404: "NOT_FOUND"}
_CQ = re.compile(r"\[CQ:([A-Za-z0-9_.-]+)((?:,[^\]]*)?)\]")


class OneBotError(Exception):
    """A failed API call: `code` is a chatbus error code (EXECUTION_ERROR, TIMEOUT, UNAVAILABLE, ...)."""

    def __init__(self, code: str, message: str, retcode: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retcode = retcode


def _unescape(text: str, *, in_param: bool = False) -> str:
    text = text.replace("&#91;", "[").replace("&#93;", "]")
    if in_param:
        text = text.replace("&#44;", ",")
    return text.replace("&amp;", "&")


def parse_cq(message: str) -> list[dict[str, Any]]:
    """`hi [CQ:at,qq=123] there` -> segments, as if the bot had sent an array."""
    segments: list[dict[str, Any]] = []
    pos = 0
    for match in _CQ.finditer(message):
        if match.start() > pos:
            segments.append({"type": "text", "data": {"text": _unescape(message[pos : match.start()])}})
        data: dict[str, Any] = {}
        for pair in filter(None, match.group(2).split(",")):
            key, _, value = pair.partition("=")
            data[key] = _unescape(value, in_param=True)
        segments.append({"type": match.group(1), "data": data})
        pos = match.end()
    if pos < len(message):
        segments.append({"type": "text", "data": {"text": _unescape(message[pos:])}})
    return segments


def segments_of(message: Any) -> list[dict[str, Any]]:
    """A message field in either form; anything malformed becomes no segment rather than an error."""
    if isinstance(message, str):
        return parse_cq(message)
    if not isinstance(message, list):
        return []
    out = []
    for seg in message:
        if isinstance(seg, dict) and isinstance(seg.get("type"), str):
            data = seg.get("data")
            out.append({"type": seg["type"], "data": data if isinstance(data, dict) else {}})
    return out


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def inbound(frame: dict[str, Any], platform_id: str, self_id: str) -> InboundMessage | None:
    """A user message worth the pipeline's time, or None (meta events, notices, `message_sent`, the
    bot's own messages, frames missing an id)."""
    if frame.get("post_type") != "message":
        return None
    message_type = frame.get("message_type")
    message_id, user_id = _id(frame.get("message_id")), _id(frame.get("user_id"))
    if message_type not in ("private", "group") or message_id is None or user_id is None:
        return None
    if user_id == self_id:
        return None
    group_id = _id(frame.get("group_id")) if message_type == "group" else None
    if message_type == "group" and group_id is None:
        return None
    segments = segments_of(frame.get("message", frame.get("raw_message", "")))
    text_parts: list[str] = []
    at_me = False
    reply_to = None
    for seg in segments:
        kind, data = seg["type"], seg["data"]
        if kind == "text":
            text_parts.append(str(data.get("text", "")))
        elif kind == "at":
            if _id(data.get("qq")) == self_id:
                at_me = True
            else:
                text_parts.append(f"@{data.get('name') or data.get('qq')}")
        elif kind == "reply":
            reply_to = _id(data.get("id"))
    raw_sender: dict[str, Any] = frame["sender"] if isinstance(frame.get("sender"), dict) else {}
    sender = Sender(
        nickname=str(raw_sender.get("nickname") or ""),
        card=str(raw_sender.get("card") or ""),
        role=str(raw_sender.get("role") or ""),
    )
    stamp = frame.get("time")
    return InboundMessage(
        platform="onebot",
        platform_id=platform_id,
        self_id=self_id,
        message_type=message_type,
        message_id=message_id,
        user_id=user_id,
        group_id=group_id,
        text="".join(text_parts).strip(),
        at_me=at_me,
        reply_to=reply_to,
        sender=sender,
        time=float(stamp) if isinstance(stamp, int | float) and not isinstance(stamp, bool) else time.time(),
    )


def heartbeat_interval(frame: dict[str, Any]) -> int | None:
    """A heartbeat's interval in ms, or None when the frame is no heartbeat."""
    if frame.get("post_type") == "meta_event" and frame.get("meta_event_type") == "heartbeat":
        interval = frame.get("interval")
        return int(interval) if isinstance(interval, int) and 1000 <= interval <= 3_600_000 else 30_000
    return None


def call_frame(action: str, params: dict[str, Any], echo: str) -> dict[str, Any]:
    return {"action": action, "params": params, "echo": echo}


def call_result(response: dict[str, Any]) -> Any:
    """The `data` of an answer, or OneBotError with its retcode mapped."""
    retcode = response.get("retcode")
    if response.get("status") == "ok" or retcode == 0:
        return response.get("data")
    code = RETCODES.get(retcode, "EXECUTION_ERROR") if isinstance(retcode, int) else "EXECUTION_ERROR"
    message = str(response.get("wording") or response.get("message") or f"retcode {retcode}")
    raise OneBotError(code, message, retcode if isinstance(retcode, int) else None)


def text_message(text: str, reply_to: str | None = None) -> list[dict[str, Any]]:
    segments: list[dict[str, Any]] = []
    if reply_to:
        segments.append({"type": "reply", "data": {"id": reply_to}})
    segments.append({"type": "text", "data": {"text": text}})
    return segments


def send_params(message_type: str, target: str, segments: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The action and params that send `segments` to a user or a group."""
    if message_type == "group":
        return "send_group_msg", {"group_id": int(target) if target.isdigit() else target, "message": segments}
    return "send_private_msg", {"user_id": int(target) if target.isdigit() else target, "message": segments}
