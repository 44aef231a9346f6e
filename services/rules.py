"""Rules every domain shares, written once: the expected-version check and LIKE escaping."""

from __future__ import annotations

from schemas.errors import DomainError


def require_version(what: str, current: int, expected: int | None) -> None:
    """`If-Match` / `expectedVersion`: a stale version is 409 VERSION_CONFLICT; None means any."""
    if expected is not None and expected != current:
        raise DomainError(
            "VERSION_CONFLICT",
            f"{what} is at version {current}, not {expected}",
            details=[{"currentVersion": current, "expectedVersion": expected}],
        )


def escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE / ILIKE pattern (with the default backslash escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
