"""Every NATS subject and stream name chatbus uses, in one place (DESIGN.md "Bus")."""

from __future__ import annotations

EVENTS_STREAM = "EVENTS"
EVENTS_WILDCARD = "events.>"


def command(domain: str, action: str) -> str:
    return f"cmd.{domain}.{action}"


def command_wildcard(domain: str) -> str:
    return f"cmd.{domain}.*"


def worker_queue(domain: str) -> str:
    return f"workers.{domain}"


def event(domain: str, event_type: str) -> str:
    return f"events.{domain}.{event_type}"


def chat_stream(request_id: str) -> str:
    return f"chat.stream.{request_id}"


def logs(service: str, level: str) -> str:
    return f"logs.{service}.{level}"


RELAY_WAKE = "sys.relay.wake"
TOKEN_REVOKED = "sys.auth.revoked"


def heartbeat(role: str) -> str:
    return f"sys.heartbeat.{role}"


def platform_send(platform_id: str) -> str:
    return f"platform.{platform_id}.send"
