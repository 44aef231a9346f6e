"""Process settings, from the environment (and CLI flags, which override it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


@dataclass
class Settings:
    host: str = field(default_factory=lambda: os.environ.get("CHATBUS_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env_int("CHATBUS_PORT", 6285))
    data_dir: str = field(default_factory=lambda: os.environ.get("CHATBUS_DATA_DIR", "./.chatbus"))
    nats_url: str = field(default_factory=lambda: os.environ.get("CHATBUS_NATS_URL", ""))
    database_url: str = field(default_factory=lambda: os.environ.get("CHATBUS_DATABASE_URL", ""))
    admin_username: str = field(default_factory=lambda: os.environ.get("CHATBUS_ADMIN_USERNAME", "admin"))
    admin_password: str = field(default_factory=lambda: os.environ.get("CHATBUS_ADMIN_PASSWORD", ""))
    jwt_secret: str = field(default_factory=lambda: os.environ.get("CHATBUS_JWT_SECRET", ""))
    token_ttl: int = field(default_factory=lambda: _env_int("CHATBUS_TOKEN_TTL", 24 * 3600))
    session_max_age: int = field(default_factory=lambda: _env_int("CHATBUS_SESSION_MAX_AGE", 30 * 24 * 3600))
    command_timeout: float = field(default_factory=lambda: float(os.environ.get("CHATBUS_COMMAND_TIMEOUT", "10")))
    public_url: str = field(default_factory=lambda: os.environ.get("CHATBUS_PUBLIC_URL", ""))
    log_level: str = field(default_factory=lambda: os.environ.get("CHATBUS_LOG_LEVEL", "INFO"))
    db_pool_size: int = field(default_factory=lambda: _env_int("CHATBUS_DB_POOL_SIZE", 10))
    jetstream_replicas: int = field(default_factory=lambda: _env_int("CHATBUS_JETSTREAM_REPLICAS", 1))
    worker_concurrency: int = field(default_factory=lambda: _env_int("CHATBUS_WORKER_CONCURRENCY", 64))
    # Seconds before a message held by a killed worker goes to another one (the cost of a worker kill).
    pipeline_ack_wait: float = field(default_factory=lambda: float(os.environ.get("CHATBUS_PIPELINE_ACK_WAIT", "30")))
    relay_batch: int = field(default_factory=lambda: _env_int("CHATBUS_RELAY_BATCH", 1000))
    # Only these proxies may set X-Forwarded-For (comma-separated addresses).
    trusted_proxies: str = field(default_factory=lambda: os.environ.get("CHATBUS_TRUSTED_PROXIES", ""))

    def require_urls(self) -> None:
        missing = [
            n for n, v in (("CHATBUS_NATS_URL", self.nats_url), ("CHATBUS_DATABASE_URL", self.database_url)) if not v
        ]
        if missing:
            raise SystemExit(f"set {' and '.join(missing)} (or use `chatbus up`, which starts both)")
