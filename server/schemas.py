"""Request and response models of the HTTP API."""

from __future__ import annotations

import re
from typing import Any, Literal

from babel import Locale, UnknownLocaleError
from pydantic import BaseModel, Field, field_validator

from rag.settings import STORE_NAME

# BCP-47 as storefronts send it: language, optional script, optional region (es-MX, zh-Hant-TW)
LOCALE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z]{4})?(?:[-_](?:[A-Za-z]{2}|[0-9]{3}))?")


def check_locale(value: str) -> str:
    """A known language tag (Babel knows its language), normalised to BCP-47 spelling."""
    if not LOCALE_TAG.fullmatch(value):
        raise ValueError("not a language tag such as es-MX")
    try:
        loc = Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise ValueError("unknown language tag") from exc
    return "-".join(p for p in (loc.language, loc.script, loc.territory) if p)


class ChatRequest(BaseModel):
    message: str = Field(min_length=1)
    session_id: str | None = Field(default=None, max_length=128)
    customer_id: str | None = Field(default=None, max_length=256)
    # the shopper's e-mail (pre-chat form or signed-in storefront): proof for order lookups
    email: str | None = Field(default=None, max_length=254)
    country: str | None = Field(default=None, min_length=2, max_length=3)
    locale: str | None = Field(default=None, max_length=16, examples=["es-MX"])
    store: str | None = Field(default=None, pattern=f"^{STORE_NAME.pattern}$")
    stream: bool = False

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return None if value is None else check_locale(value)


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
    # send it back as X-Session-Token with the session id (continue, transcript, feedback)
    session_token: str
    mode: str
    usage: dict[str, int]
    country: str | None
    personalisation: list[str] = Field(default_factory=list)
    order: str | None = None
    # the facts the reply was written from: {"text", "doc_id", "scope", "score"}
    facts: list[dict[str, Any]] = Field(default_factory=list)


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
