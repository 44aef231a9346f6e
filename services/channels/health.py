"""Channel health after a chat turn: each channel the turn tried records its outcome (success,
cooldown on 429 honouring Retry-After, `error` after repeated failures: `domain.decide_health`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bus.eventstore import EventStore
from schemas.envelope import CommandEnvelope
from services.channels.domain import DEFAULT_COOLDOWN_SECONDS
from services.channels.handlers import record_health

log = logging.getLogger("chatbus.channels")


async def record_outcomes(
    store: EventStore, turn_command: CommandEnvelope, tried: Sequence[dict[str, Any]], *, used_was_active: bool
) -> None:
    """One health write per channel tried, each a sub-command of the turn (a retried turn writes
    none twice). A success on a channel already `active` changes nothing and writes nothing."""
    for i, attempt in enumerate(tried):
        failed = "error" in attempt
        retry_after = attempt.get("retryAfter") if attempt.get("kind") == "rate_limited" else None
        if failed and attempt.get("kind") == "rate_limited" and retry_after is None:
            retry_after = DEFAULT_COOLDOWN_SECONDS
        if not failed and used_was_active:
            continue
        payload = {"id": attempt["id"], "ok": not failed, "error": attempt.get("error"), "retry_after": retry_after}
        try:
            await store.execute(turn_command.derive(f"health-{i}", payload), record_health)
        except Exception:
            log.exception("could not record the health of channel %s", attempt["id"])
