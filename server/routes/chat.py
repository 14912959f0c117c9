"""Shopper endpoints: chat (JSON or Server-Sent Events), transcript, feedback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from rag.answer.pipeline import AskRequest, Event, Reply
from rag.container import Container
from rag.errors import KefuError, NotFound
from server.idempotency import Outcome, run_once_async
from server.metrics import language_label
from server.schemas import ChatRequest, ChatResponse, FeedbackRequest, SessionOut, TurnOut
from server.security import (
    client_address,
    new_session_id,
    require_public_key,
    require_session,
    session_token,
    state,
    valid_session,
)
from server.shedding import Ticket
from server.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", dependencies=[Depends(require_public_key)], tags=["chat"])


def _limits(request: Request, st: AppState, session_id: str | None) -> None:
    ip = client_address(request)
    for limiter, key in ((st.ip_limit, f"ip:{ip}"), (st.session_limit, f"s:{session_id}")):
        if key == "s:None":
            continue
        wait = limiter.check(key)
        if wait is not None:
            st.metrics.errors.labels("rate_limited").inc()
            raise HTTPException(
                429, "too many messages, slow down", headers={"Retry-After": str(int(wait) + 1)}
            )


def _observe(st: AppState, reply: Reply) -> None:
    st.metrics.replies.labels(reply.mode, language_label(reply.language)).inc()
    if reply.escalation.get("escalate") and reply.mode == "handoff":
        st.metrics.escalations.labels(str(reply.escalation.get("reason"))).inc()
    if reply.mode == "fallback":
        st.metrics.fallbacks.inc()
    for kind, n in reply.usage.items():
        st.metrics.tokens.labels(kind).inc(n)
    # ids, counts and timings only: the shopper's text and the reply stay out of the logs
    log.info(
        "reply",
        extra={
            "session_id": reply.session_id,
            "language": reply.language,
            "mode": reply.mode,
            "confidence": reply.confidence,
            "sources": len(reply.sources),
            "escalation": reply.escalation.get("reason")
            if reply.escalation.get("escalate")
            else None,
            "total_ms": reply.timings_ms.get("total"),
            "prompt_version": reply.prompt_version,
            "completion_tokens": reply.usage.get("completion_tokens"),
        },
    )


@router.post("/chat", response_model=ChatResponse)
async def chat(body: ChatRequest, request: Request, response: Response) -> Any:
    """A shopper's message. Session ids are the server's: a `session_id` continues that session
    only with its `X-Session-Token` (both come with every reply); otherwise, or without one,
    a new session starts and the reply carries its id and token. Under more load than the
    server answers, a 503 with `Retry-After` (server/shedding.py) that records nothing."""
    st = state(request)
    if len(body.message) > st.settings.server.max_message_chars:
        raise HTTPException(
            413, f"message is longer than {st.settings.server.max_message_chars} characters"
        )
    # before anything is counted or claimed for it: a shed request leaves no trace
    with st.admission.admit() as ticket:
        return await _chat(st, ticket, body, request, response)


async def _chat(
    st: AppState, ticket: Ticket, body: ChatRequest, request: Request, response: Response
) -> Any:
    given = body.session_id
    session_id = given if given and valid_session(request, given) else new_session_id()
    token = session_token(st.session_secret, session_id)

    def prepare() -> Container:
        # the limits may live in the shared database, and opening another store's container
        # reads its files: both off the event loop, in one hop (shed if it waits too long)
        _limits(request, st, session_id)
        return st.container(body.store)

    container = await st.admission.run(ticket, prepare)
    ask = AskRequest(
        message=body.message,
        session_id=session_id,
        customer_id=body.customer_id,
        email=body.email,
        country=body.country,
        locale=body.locale,
        client_address=client_address(request),
    )
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_stream:

        async def answer() -> dict[str, Any]:
            # `container.pipeline` is built on a store's first question: in the thread too.
            # The answer runs to its end even when the client leaves (the turn is recorded).
            task = await st.admission.start(ticket, lambda: container.pipeline.answer(ask))
            reply = await asyncio.shield(task)
            _observe(st, reply)
            return reply.to_dict() | {"session_token": token}

        headers = {"X-Session-Id": session_id, "X-Session-Token": token}

        async def answer_once() -> Outcome:
            shaped = ChatResponse.model_validate(await answer()).model_dump(mode="json")
            return Outcome(200, shaped, headers)

        # a retry with the same Idempotency-Key gets the first reply, and records no new turn;
        # its keys are the session's, or the client address's before a session exists
        caller = f"session:{session_id}" if session_id == given else f"ip:{ask.client_address}"
        once = await run_once_async(
            request, scope=f"chat:{caller}", payload=body, produce=answer_once
        )
        if once is not None:
            return once
        response.headers.update(headers)
        return await answer()

    def events() -> Iterator[Event]:
        return container.pipeline.stream(ask)

    # the stream's status is sent with its first byte: a request shed while it waits for a
    # thread gets its 503 here, before the stream starts
    produced = await _in_one_thread(st, ticket, events)

    async def sse() -> AsyncIterator[str]:
        try:
            async for ev in produced:
                if ev.type in {"token", "replace"}:
                    yield _sse(ev.type, {"text": ev.data})
                elif ev.type == "done":
                    _observe(st, ev.data)
                    reply = ev.data.to_dict() | {"session_token": token}
                    yield _sse(
                        "done",
                        {k: reply[k] for k in reply if k != "reply"} | {"reply": reply["reply"]},
                    )
                else:
                    yield _sse(ev.type, ev.data)
        except KefuError as exc:
            st.metrics.errors.labels(exc.__class__.__name__).inc()
            yield _sse("error", {"error": exc.__class__.__name__, "message": str(exc)})
        except Exception:  # mid-stream failures become an event, never a broken connection
            log.exception("stream failed")
            st.metrics.errors.labels("internal").inc()
            yield _sse(
                "error", {"error": "internal_error", "message": "something went wrong on our side"}
            )

    return StreamingResponse(
        sse(),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "X-Session-Id": session_id,
            "X-Session-Token": token,
        },
    )


async def _in_one_thread(
    st: AppState, ticket: Ticket, make: Callable[[], Iterator[Event]]
) -> AsyncIterator[Event]:
    """The pipeline's events, produced by one worker thread from start to finish; returns once
    that thread has started (Overloaded when it did not in time).

    Advancing the generator one event per threadpool hop (`iterate_in_threadpool`) sends every
    event back to the end of the threadpool's queue: under load a reply that has started waits
    behind every newer request at each step and overruns its time budget, and no reply
    finishes. Here a reply waits for a thread once, then runs to the end; a shopper who leaves
    does not stop it (the turn is still recorded)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event | BaseException | None] = asyncio.Queue()

    def put(item: Event | BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed at shutdown
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        try:
            for ev in make():
                put(ev)
        except BaseException as exc:  # re-raised in the request's task
            put(exc)
        finally:
            put(None)

    await st.admission.start(ticket, work)
    return _drain(queue)


async def _drain(queue: asyncio.Queue[Event | BaseException | None]) -> AsyncIterator[Event]:
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


# The handlers below touch SQLite: plain functions, so they run in the threadpool.


@router.get("/sessions/{session_id}", response_model=SessionOut)
def get_session(session_id: str, request: Request, store: str | None = None) -> Any:
    """The transcript; needs the session's `X-Session-Token` (404 without it, as if none)."""
    require_session(request, session_id)
    conv = state(request).container(store).conversations
    info = conv.session(session_id)
    if info is None:
        raise NotFound("no such session")
    turns = conv.history(session_id, 500)
    return {
        "session_id": session_id,
        "customer_id": info["customer_id"],
        "language": info["language"],
        "turns": [
            TurnOut(role=t.role, content=t.content, language=t.language, created_at=t.created_at)
            for t in turns
        ],
        "handoff": conv.active_handoff(session_id),
    }


@router.get("/documents/{doc_id:path}", response_class=PlainTextResponse)
def document(doc_id: str, request: Request, store: str | None = None) -> str:
    """A source document's text (the seller's public policies), for the widget's source links."""
    index = state(request).container(store).index
    info = index.get_document(doc_id)
    if info is None:
        raise NotFound(f"no document {doc_id!r}")
    return f"{info.title}\n\n" + "\n\n".join(
        ch.text.split("\n", 1)[-1] for ch in index.document_chunks(doc_id)
    )


@router.post("/sessions/{session_id}/feedback", status_code=204)
def feedback(
    session_id: str, body: FeedbackRequest, request: Request, store: str | None = None
) -> None:
    """Thumbs up or down on a session; needs its `X-Session-Token` like the transcript."""
    require_session(request, session_id)
    state(request).container(store).conversations.add_feedback(
        session_id, body.rating, body.comment
    )
