"""What an edge instance needs to run; built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EdgeConfig:
    nats_url: str
    database_url: str
    jwt_secret: str
    token_ttl: int = 24 * 3600
    # Absolute lifetime of a session: refreshes never extend it past this many seconds after the login.
    session_max_age: int = 30 * 24 * 3600
    command_timeout: float = 10.0
    chat_timeout: float = 300.0  # a chat turn waits on an LLM: minutes, not seconds
    public_url: str = ""
    db_pool_size: int = 10
    trusted_proxies: tuple[str, ...] = ()
    instance_id: str = "edge"
    # Publish this process's log records on `logs.edge.<level>` (bus/logs.py). Off by default: tests run
    # several edges and workers in one process, where one publisher per edge would repeat every line.
    publish_logs: bool = False
