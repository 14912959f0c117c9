"""Chat before ingest: a lock on a shared model where shoppers' work jumps the queue.

One embedding model serves both the shoppers' questions and the seller's uploads. Ingest runs
in small batches, each taking the lock on its own; while a chat request is waiting, no
background batch may take the lock, so a question waits for at most the batch in progress.
Work is background when the thread that does it said so (`with background():`), so callers
of the embedder need no new parameter and the Embedder port stays as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def background() -> Iterator[None]:
    """Mark the work done in this block, on this thread, as yielding to chat."""
    before = getattr(_local, "background", False)
    _local.background = True
    try:
        yield
    finally:
        _local.background = before


def in_background() -> bool:
    return bool(getattr(_local, "background", False))


class PriorityLock:
    """A mutex with two classes of waiters: foreground (chat) ones go first."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._held = False
        self._urgent_waiting = 0
        # counters for operators and tests: how often each kind got the lock
        self.granted = {"foreground": 0, "background": 0}

    @property
    def urgent_waiting(self) -> int:
        with self._cond:
            return self._urgent_waiting

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Take the lock at this thread's priority (see `background`)."""
        low = in_background()
        with self._cond:
            if low:
                while self._held or self._urgent_waiting:
                    self._cond.wait()
            else:
                self._urgent_waiting += 1
                try:
                    while self._held:
                        self._cond.wait()
                finally:
                    self._urgent_waiting -= 1
            self._held = True
            self.granted["background" if low else "foreground"] += 1
        try:
            yield
        finally:
            with self._cond:
                self._held = False
                self._cond.notify_all()
