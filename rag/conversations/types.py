"""What a conversation store holds: turns, and the hashed keys of failed order checks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant | agent
    content: str
    language: str | None = None
    created_at: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def now_stamp() -> str:
    """The stores' timestamps: UTC ISO 8601 to the second, so text order is time order."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def attempt_key(kind: str, value: str) -> str:
    """The stored form of a verification key: a hash, so the table holds no e-mail or address."""
    return hashlib.sha256(f"{kind}:{value.strip().casefold()}".encode()).hexdigest()


# the modes of an assistant turn that could not help (counted towards escalation)
UNHELPFUL_MODES = frozenset({"dont_know", "fallback"})
