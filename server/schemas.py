"""Request and response models of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ChatRequest(BaseModel):
    message: str = Field(min_length=1)
    session_id: str | None = Field(default=None, max_length=128)
    customer_id: str | None = Field(default=None, max_length=256)
    # the shopper's e-mail (pre-chat form or signed-in storefront): proof for order lookups
    email: str | None = Field(default=None, max_length=254)
    country: str | None = Field(default=None, min_length=2, max_length=3)
    locale: str | None = Field(default=None, max_length=16)
    store: str | None = Field(default=None, max_length=64)
    stream: bool = False


class Source(BaseModel):
    doc_id: str
    title: str
    chunk_id: str
    score: float


class EscalationOut(BaseModel):
    escalate: bool
    reason: str | None
    score: float | None


class ChatResponse(BaseModel):
    reply: str
    language: str
    sources: list[Source]
    escalation: EscalationOut
    intent: str | None
    confidence: float
    prompt_version: str
    model: str
    timings_ms: dict[str, float]
    session_id: str
    mode: str
    usage: dict[str, int]
    country: str | None
    personalisation: list[str] = Field(default_factory=list)
    order: str | None = None


class TurnOut(BaseModel):
    role: str
    content: str
    language: str | None
    created_at: str


class SessionOut(BaseModel):
    session_id: str
    customer_id: str | None
    language: str | None
    turns: list[TurnOut]
    handoff: dict[str, Any] | None


class FeedbackRequest(BaseModel):
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=2000)


class AgentReply(BaseModel):
    message: str = Field(min_length=1, max_length=4000)
    agent: str | None = Field(default=None, max_length=128)


class ClaimRequest(BaseModel):
    agent: str = Field(min_length=1, max_length=128)


class ErrorOut(BaseModel):
    error: str
    message: str
    request_id: str | None = None
