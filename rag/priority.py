"""Chat before ingest: a lock on a shared model where shoppers' work jumps the queue.

One embedding model serves both the shoppers' questions and the seller's uploads. Ingest runs
in small batches, each taking the lock on its own; while a chat request is waiting, no
background batch may take the lock, so a question waits for at most the batch in progress.
Work is background when the thread that does it said so (`with background():`), so callers
of the embedder need no new parameter and the Embedder port stays as it is.

Chat requests that arrive together are encoded together (`MicroBatcher`): one model call for
all of them instead of a queue of calls behind the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial

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


class _Request:
    __slots__ = ("error", "mode", "texts", "vectors")

    def __init__(self, mode: str, texts: list[str]) -> None:
        self.mode = mode
        self.texts = texts
        self.vectors: list[list[float]] | None = None
        self.error: BaseException | None = None


class MicroBatcher:
    """Concurrent chat embeddings encoded together.

    Each request joins a queue, then takes the model's lock at chat priority. Whoever gets the
    lock first encodes every queued text in one call per mode (query or document) and hands
    each request its vectors; the others find theirs done when their turn comes and leave at
    once. A lone request is encoded as soon as it has the lock: no waiting window. Background
    work (ingest) does not come through here; it keeps taking the lock batch by batch, behind
    chat."""

    def __init__(
        self,
        lock: PriorityLock,
        encode: Callable[[str, list[str]], Sequence[Sequence[float]]],
        *,
        max_texts: int = 256,
        encode_mixed: Callable[[list[tuple[str, str]]], Sequence[Sequence[float]]] | None = None,
    ) -> None:
        self.lock = lock
        self._encode = encode
        # one call for texts of several modes, when the model allows it (each text carries its
        # own prompt): a turn's query and document vectors cost one forward pass, not two
        self._encode_mixed = encode_mixed
        self.max_texts = max_texts  # texts per encode call, beyond which a batch is split
        self._queue: list[_Request] = []
        self._mutex = threading.Lock()
        # counters for operators and tests: encode calls made, requests served
        self.calls = 0
        self.served = 0

    def embed(self, mode: str, texts: Sequence[str]) -> list[list[float]]:
        """The texts' vectors in `mode`, encoded alone or together with concurrent requests."""
        return self.embed_together([(mode, texts)])[0]

    def embed_together(self, parts: Sequence[tuple[str, Sequence[str]]]) -> list[list[list[float]]]:
        """The vectors of several (mode, texts) parts, served in one batch (with concurrent
        requests)."""
        reqs = [_Request(mode, list(texts)) for mode, texts in parts]
        todo = [r for r in reqs if r.texts]
        if todo:
            with self._mutex:
                self._queue.extend(todo)
            with self.lock.hold():
                if any(r.vectors is None and r.error is None for r in todo):
                    with self._mutex:
                        batch, self._queue = self._queue, []
                    self._serve(batch)
        for r in todo:
            if r.error is not None:
                raise r.error
        return [r.vectors if r.vectors is not None else [] for r in reqs]

    def documents(self, texts: Sequence[str], batch_size: int) -> list[list[float]]:
        """Documents' vectors: a chat request's through the queue above; background work
        (ingest) takes the lock one batch at a time, so a shopper's question waits for one
        batch at most."""
        if not in_background():
            return self.embed("document", texts)
        vectors: list[list[float]] = []
        for i in range(0, len(texts), batch_size):
            with self.lock.hold():
                out = self._encode("document", list(texts[i : i + batch_size]))
            vectors.extend([float(x) for x in v] for v in out)
        return vectors

    def _serve(self, batch: list[_Request]) -> None:
        """Every request of the batch encoded: in one call for all modes when the model allows
        it, else one call per mode (split at `max_texts`)."""
        if self._encode_mixed is not None and len({r.mode for r in batch}) > 1:
            self._serve_group(batch, self._encode_mixed)
            return
        by_mode: dict[str, list[_Request]] = {}
        for r in batch:
            by_mode.setdefault(r.mode, []).append(r)
        for mode, requests in by_mode.items():
            self._serve_group(requests, partial(self._encode_one_mode, mode))

    def _encode_one_mode(
        self, mode: str, items: list[tuple[str, str]]
    ) -> Sequence[Sequence[float]]:
        return self._encode(mode, [t for _, t in items])

    def _serve_group(
        self,
        requests: list[_Request],
        encode: Callable[[list[tuple[str, str]]], Sequence[Sequence[float]]],
    ) -> None:
        items = [(r.mode, t) for r in requests for t in r.texts]
        try:
            out: list[list[float]] = []
            for i in range(0, len(items), self.max_texts):
                self.calls += 1
                out.extend([float(x) for x in v] for v in encode(items[i : i + self.max_texts]))
        except BaseException as exc:  # every waiter gets the failure, not a hang
            for r in requests:
                r.error = exc
            return
        at = 0
        for r in requests:
            r.vectors = out[at : at + len(r.texts)]
            at += len(r.texts)
        self.served += len(requests)
