"""Agent and admin endpoints: the handoff queue, erasure, ingestion jobs, stats."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile

from rag.conversations.types import Turn
from rag.errors import InvalidInput, NotFound
from server.idempotency import Outcome, run_once
from server.metrics import bounded_counts
from server.schemas import AgentReply, ClaimRequest
from server.security import require_agent, state

router = APIRouter(prefix="/v1", dependencies=[Depends(require_agent)], tags=["agents"])

# Handlers that touch SQLite or a storefront are plain functions: FastAPI runs them in its
# threadpool, so a slow store (erasure retries a storefront API) never blocks the event loop.


@router.get("/handoffs")
def list_handoffs(
    request: Request, status: str | None = "open", store: str | None = None
) -> list[dict[str, Any]]:
    return state(request).container(store).conversations.handoffs(status or None)


def _handoff(request: Request, handoff_id: int, store: str | None) -> dict[str, Any]:
    h = state(request).container(store).conversations.handoff(handoff_id)
    if h is None:
        raise NotFound(f"no handoff {handoff_id}")
    return h


@router.post("/handoffs/{handoff_id}/claim")
def claim(
    handoff_id: int, body: ClaimRequest, request: Request, store: str | None = None
) -> dict[str, Any]:
    _handoff(request, handoff_id, store)
    conv = state(request).container(store).conversations
    conv.set_handoff_status(handoff_id, "claimed", agent=body.agent)
    return _handoff(request, handoff_id, store)


@router.post("/handoffs/{handoff_id}/resolve")
def resolve(handoff_id: int, request: Request, store: str | None = None) -> dict[str, Any]:
    _handoff(request, handoff_id, store)
    state(request).container(store).conversations.set_handoff_status(handoff_id, "resolved")
    return _handoff(request, handoff_id, store)


@router.post("/handoffs/{handoff_id}/reply", status_code=201)
def agent_reply(
    handoff_id: int, body: AgentReply, request: Request, store: str | None = None
) -> Any:
    """An agent's message, delivered into the shopper's session. With an `Idempotency-Key`, a
    retried reply is delivered once (server/idempotency.py)."""

    def deliver() -> dict[str, Any]:
        h = _handoff(request, handoff_id, store)
        conv = state(request).container(store).conversations
        conv.append(
            str(h["session_id"]),
            Turn(role="agent", content=body.message, meta={"agent": body.agent}),
        )
        if h["status"] == "open":
            conv.set_handoff_status(handoff_id, "claimed", agent=body.agent)
        return {"session_id": h["session_id"], "delivered": True}

    # one admin key, so one caller: the agents share the keys' scope
    once = run_once(
        request, scope="agents", payload=body, produce=lambda: Outcome(201, deliver(), {})
    )
    return deliver() if once is None else once


@router.delete("/customers/{customer_id}")
def erase(customer_id: str, request: Request, store: str | None = None) -> dict[str, Any]:
    """Erase a shopper everywhere kefu keeps them. A plain function: the storefront lookup (with
    its retries) and SQLite run in the threadpool, never on the event loop."""
    receipt = state(request).container(store).erasure.erase(customer_id)
    return {"customer": customer_id, "deleted": {**receipt, "vectors": 0}}


@router.post("/admin/ingest", status_code=202)
def ingest(
    request: Request,
    files: Annotated[list[UploadFile] | None, File()] = None,
    store: str | None = None,
) -> dict[str, Any]:
    """Upload documents (added to the store), or, without files, sync the configured folder.
    The work runs in a background job: cancellable, time-limited, embedding in batches that
    give way to shoppers' questions; the upload folder is removed whatever happens. A plain
    function: copying the uploads to disk runs in the threadpool."""
    from ingest.service import build_ingestor
    from ingest.sync import Stopped

    st = state(request)
    container = st.container(store)
    folder = st.settings.server.ingest_folder
    timeout_s = st.settings.ingest.job_timeout_s
    staged: list[Path] = []
    tmp: Path | None = None
    if files:
        tmp = Path(tempfile.mkdtemp(prefix="kefu-upload-"))
        try:
            for f in files:
                name = Path(f.filename or "upload").name
                if not name or name.startswith("."):
                    raise InvalidInput(f"bad file name {f.filename!r}")
                dest = tmp / name
                with dest.open("wb") as out:
                    shutil.copyfileobj(f.file, out)
                staged.append(dest)
        except BaseException:  # a refused request leaves no copy of what it sent
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    elif folder is None:
        raise InvalidInput("send files, or set KEFU_SERVER__INGEST_FOLDER to sync a folder")
    job = st.new_job()

    def work() -> None:
        try:
            with st.ingest_lock:  # one ingestion at a time per process
                job.control.deadline = time.monotonic() + timeout_s if timeout_s else None
                if not job.finished and job.status != "cancelling":
                    job.status = "running"
                ing = build_ingestor(container)
                report = (
                    ing.add(staged, root=tmp, control=job.control)
                    if staged
                    else ing.sync(folder, control=job.control)  # type: ignore[arg-type]
                )
            outcome: tuple[str, dict[str, Any] | None, str | None] = (
                "done",
                report.to_dict(),
                None,
            )
        except Stopped as exc:  # cancelled or out of time: finished documents are kept
            outcome = ("cancelled", exc.report.to_dict() if exc.report else None, exc.reason)
        except Exception as exc:  # reported through the job, never lost
            outcome = ("failed", None, str(exc))
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        # the job is seen finished only once its uploaded copies are gone
        job.result, job.error = outcome[1], outcome[2]
        job.status = outcome[0]

    threading.Thread(target=work, daemon=True, name=f"ingest-{job.id[:8]}").start()
    return {"job_id": job.id, "status": job.status}


def _job(request: Request, job_id: str) -> dict[str, Any]:
    job = state(request).jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return {"job_id": job.id, "status": job.status, "result": job.result, "error": job.error}


@router.get("/admin/jobs/{job_id}")
async def job_status(job_id: str, request: Request) -> dict[str, Any]:
    return _job(request, job_id)


@router.post("/admin/jobs/{job_id}/cancel", status_code=202)
async def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
    """Stop a job at its next file or embedding batch; every document stays at its old or
    new version. Cancelling a finished job changes nothing."""
    job = state(request).jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    job.cancel()
    return _job(request, job_id)


@router.get("/admin/stats")
def stats(request: Request, store: str | None = None) -> dict[str, Any]:
    c = state(request).container(store)
    docs = c.index.documents()
    by_lang: dict[str, int] = {}
    for d in docs:
        by_lang[d.language] = by_lang.get(d.language, 0) + 1
    conversations = c.conversations.stats()
    # languages as keys from a fixed set ("other" for the rest), like the metric labels
    conversations["by_language"] = bounded_counts(conversations.get("by_language", {}))
    return {
        "store": c.store,
        "documents": len(docs),
        "chunks": c.index.chunk_count(),
        "documents_by_language": bounded_counts(by_lang),
        **conversations,
    }
