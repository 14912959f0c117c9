"""Per-session, per-IP and failed-auth rate limits: sliding one-minute windows.

In the process's memory by default (one worker); in the shared database when
KEFU_DATABASE__URL is set, so that a limit holds across `kefu serve --workers N` and across
machines instead of being multiplied by them."""

from __future__ import annotations

import threading
import time
from collections import deque

from rag.container import build_rate_window
from rag.ports import RateWindow
from rag.settings import Settings


class MemoryWindow:
    """A RateWindow in this process's memory."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, per_minute: int, *, count: bool = True) -> float | None:
        now = time.monotonic()
        with self._lock:
            q = self._hits.get(key)
            if q is None:
                if not count:
                    return None
                q = self._hits[key] = deque()
            while q and now - q[0] >= 60:
                q.popleft()
            if len(q) >= per_minute:
                return max(0.0, 60 - (now - q[0]))
            if count:
                q.append(now)
                if len(self._hits) > 100_000:  # forget idle keys
                    for k in [k for k, v in self._hits.items() if not v]:
                        del self._hits[k]
            return None

    def close(self) -> None:
        self._hits.clear()


class RateLimiter:
    """One limit (`per_minute` requests per key) over a window, its keys kept apart from the
    other limits' by `scope`."""

    def __init__(
        self, per_minute: int, *, scope: str = "", window: RateWindow | None = None
    ) -> None:
        self.per_minute = per_minute
        self.scope = scope
        self.window: RateWindow = window if window is not None else MemoryWindow()

    def blocked(self, key: str) -> float | None:
        """Like `check`, without counting: seconds to wait while the key is over its limit."""
        return self.window.check(f"{self.scope}{key}", self.per_minute, count=False)

    def check(self, key: str) -> float | None:
        """None when allowed (and counted); else seconds until the next request is allowed."""
        return self.window.check(f"{self.scope}{key}", self.per_minute)


def build_limiters(settings: Settings) -> tuple[RateLimiter, RateLimiter, RateLimiter]:
    """The server's limits per session, per client address and on failed keys, sharing one
    window: the database's when one is configured, else this process's memory."""
    s = settings.server
    window = build_rate_window(settings) or MemoryWindow()
    return (
        RateLimiter(s.rate_per_session, scope="session:", window=window),
        RateLimiter(s.rate_per_ip, scope="ip:", window=window),
        RateLimiter(s.auth_failures_per_minute, scope="auth:", window=window),
    )
