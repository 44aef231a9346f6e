"""Every NATS subject and stream name chatbus uses, in one place (DESIGN.md "Bus")."""

from __future__ import annotations

EVENTS_STREAM = "EVENTS"
EVENTS_WILDCARD = "events.>"
RATE_LIMIT_STREAM = "RATELIMIT"
RATE_LIMIT_WILDCARD = "ratelimit.>"


def rate_limit_counter(window: int, key: str) -> str:
    return f"ratelimit.{window}.{key}"


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


LOGS_WILDCARD = "logs.>"


def logs_wildcard() -> str:
    return LOGS_WILDCARD


RELAY_WAKE = "sys.relay.wake"
TOKEN_REVOKED = "sys.auth.revoked"


def heartbeat(role: str) -> str:
    return f"sys.heartbeat.{role}"


def platform_send(platform_id: str) -> str:
    return f"platform.{platform_id}.send"


def status(role: str) -> str:
    """Per-instance status (MCP servers of each tools worker), core NATS, for the API and SSE."""
    return f"sys.status.{role}"


def status_poll(role: str) -> str:
    """Ask every instance of `role` to publish its status now (an edge that just started)."""
    return f"sys.status.{role}.poll"


# Every tools worker acts on these (connect/disconnect/reconnect/reload of MCP servers): core NATS,
# no queue group, so each instance's manager converges.
MCP_CONTROL = "sys.mcp.control"


def platform_takeover(platform_id: str) -> str:
    """Broadcast by the edge that accepted a bot: any other edge holding it closes its socket."""
    return f"platform.{platform_id}.takeover"


INBOUND_STREAM = "INBOUND"
INBOUND_WILDCARD = "inbound.>"
PIPELINE_CONSUMER = "pipeline"


def inbound(platform: str, platform_id: str) -> str:
    return f"inbound.{platform}.{platform_id}"


# Asked by an edge (request/reply, core NATS): each tools worker answers with its plugins' status.
PLUGINS_STATUS = "sys.plugins.status"
