"""Load shedding for chat requests, per worker process.

Under more load than the machine answers, a request that queues only waits longer and then
times out; sent back at once it costs nothing and the client can retry elsewhere or later. So
a chat request is *admitted* when it arrives, and refused with a 503 and `Retry-After`:

- past `KEFU_SERVER__MAX_PENDING_CHATS` requests admitted and not yet answered (the queue is
  full), before anything runs for it (no rate-limit count, no Idempotency-Key claim, no turn);
- when its answer has not started `KEFU_SERVER__MAX_CHAT_WAIT_S` seconds after it arrived (it
  waited too long for a thread). Its answer then never runs; an Idempotency-Key it claimed is
  released, so that the retry runs.

The counter lives on the event loop (one per worker, no lock): admitted when the handler starts,
released when the answer's thread ends, also for a stream whose shopper left, since that work
still runs. Only the race between a thread starting an answer and the loop giving up on it takes
a per-request lock, held for a comparison."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from rag.settings import ServerSettings
from server.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")
# seconds a shed client is asked to wait: long enough for a few answers to finish, short
# enough that a shopper retrying by hand does not notice
RETRY_AFTER_S = 2
Reason = Literal["queue_full", "waited_too_long"]
_running: set[asyncio.Future[Any]] = set()  # answers running or queued for a thread


class Overloaded(HTTPException):
    """A shed chat request: a 503 whose JSON body says `overloaded`, with Retry-After."""

    code = "overloaded"

    def __init__(self, message: str) -> None:
        super().__init__(503, message, headers={"Retry-After": str(RETRY_AFTER_S)})


class _Shed(Exception):
    """Raised in a thread that got an answer the loop had already given up on."""


def default_limit(threads: int) -> int:
    """Three quarters of the threadpool: the rest stays free for transcripts, health probes and
    admins, and for the short hops a chat makes before its answer (rate limits, keys)."""
    return max(1, threads * 3 // 4)


class _Hop:
    """One piece of a request's work sent to the threadpool: started by its thread, or given up
    by the loop, whichever comes first."""

    def __init__(self) -> None:
        self._state: Literal["queued", "started", "shed"] = "queued"
        self._lock = threading.Lock()

    def begin(self) -> bool:
        """In the thread: False when the loop has shed the request already."""
        with self._lock:
            if self._state == "queued":
                self._state = "started"
            return self._state == "started"

    def give_up(self) -> bool:
        """On the loop: True when the work had not started (it never will)."""
        with self._lock:
            if self._state == "queued":
                self._state = "shed"
            return self._state == "shed"


class Ticket:
    """One admitted chat request."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.admitted_at = time.monotonic()
        self._released = False
        self.handed_over = False  # the answer's task releases the ticket when it ends

    def release(self) -> None:
        """Idempotent; on the loop only."""
        if not self._released:
            self._released = True
            self.admission._count(-1)


class Admission:
    """The chat requests of one worker: `limit` admitted at once (0: any number), each shed
    when its answer has not started within `max_wait_s` seconds (0: never)."""

    def __init__(self, *, limit: int, max_wait_s: float, metrics: Metrics) -> None:
        self.limit = limit
        self.max_wait_s = max_wait_s
        self.pending = 0
        self.metrics = metrics

    @classmethod
    def from_settings(cls, s: ServerSettings, *, threads: int, metrics: Metrics) -> Admission:
        limit = default_limit(threads) if s.max_pending_chats is None else s.max_pending_chats
        return cls(limit=limit, max_wait_s=s.max_chat_wait_s, metrics=metrics)

    def _count(self, delta: int) -> None:
        self.pending += delta
        self.metrics.pending_chats.set(self.pending)

    def _refuse(self, reason: Reason, message: str) -> Overloaded:
        self.metrics.shed.labels(reason).inc()
        log.warning("chat request shed", extra={"reason": reason, "pending": self.pending})
        return Overloaded(message)

    @contextlib.contextmanager
    def admit(self) -> Iterator[Ticket]:
        """A ticket for the request, released when the block ends unless an answer took it
        over; Overloaded when `limit` requests are pending already."""
        if self.limit and self.pending >= self.limit:
            raise self._refuse("queue_full", "the server is busy: retry in a moment")
        self._count(1)
        ticket = Ticket(self)
        try:
            yield ticket
        finally:
            if not ticket.handed_over:
                ticket.release()

    async def run(self, ticket: Ticket, work: Callable[[], T]) -> T:
        """A step of an admitted request before its answer, in the threadpool: its result, or
        Overloaded when it has not started within the maximum wait (it then never runs)."""
        task = await self._launch(ticket, work, answer=False)
        return await asyncio.shield(task)

    async def start(self, ticket: Ticket, work: Callable[[], T]) -> asyncio.Future[T]:
        """The request's answer, in the threadpool: its task once it has started, or Overloaded
        when it has not started within the maximum wait (it then never runs). The task runs to
        its end whatever happens to the request (await it shielded), and releases the ticket
        when it ends."""
        return await self._launch(ticket, work, answer=True)

    async def _launch(
        self, ticket: Ticket, work: Callable[[], T], *, answer: bool
    ) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        hop = _Hop()

        def mark() -> None:
            if not started.done():
                started.set_result(None)

        def run() -> T:
            if not hop.begin():
                raise _Shed
            with contextlib.suppress(RuntimeError):  # the loop closed at shutdown
                loop.call_soon_threadsafe(mark)
            return work()

        task = asyncio.ensure_future(run_in_threadpool(run))  # the context (request id) follows
        _running.add(task)
        ticket.handed_over = ticket.handed_over or answer
        task.add_done_callback(lambda t: _ended(t, ticket if answer else None))
        if self.max_wait_s <= 0:
            return task
        left = ticket.admitted_at + self.max_wait_s - time.monotonic()
        try:
            await asyncio.wait({started}, timeout=max(0.0, left))
        finally:
            started.cancel()  # a no-op once the thread has marked it
        # a thread may have begun the work after the wait ended: the hop decides
        if started.cancelled() and hop.give_up():
            ticket.release()
            raise self._refuse(
                "waited_too_long", "the server is busy and could not start your answer"
            )
        return task


def _ended(task: asyncio.Future[Any], ticket: Ticket | None) -> None:
    _running.discard(task)
    if ticket is not None:
        ticket.release()
    if not task.cancelled():
        task.exception()  # retrieved (a shed hop's _Shed; the others reach their awaiter)
