"""Per-session and per-IP rate limits (sliding one-minute windows, in memory)."""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, key: str) -> float | None:
        """Like `check`, without counting: seconds to wait while the key is over its limit."""
        now = time.monotonic()
        with self._lock:
            q = self._hits.get(key)
            while q and now - q[0] >= 60:
                q.popleft()
            if q is not None and len(q) >= self.per_minute:
                return max(0.0, 60 - (now - q[0]))
            return None

    def check(self, key: str) -> float | None:
        """None when allowed (and counted); else seconds until the next request is allowed."""
        now = time.monotonic()
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and now - q[0] >= 60:
                q.popleft()
            if len(q) >= self.per_minute:
                return max(0.0, 60 - (now - q[0]))
            q.append(now)
            if len(self._hits) > 100_000:  # forget idle keys
                for k in [k for k, v in self._hits.items() if not v]:
                    del self._hits[k]
            return None
