"""The knowledge stage: retrieval, the FAQ fast path, grounded generation, fallbacks.

Every reply is grounded or honest. The LLM sees only selected context sentences (see
rag/answer/generation.py); a draft that fails its checks twice is replaced by an extractive
reply quoting the policy. When retrieval finds nothing relevant, kefu says so and offers a
human."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from rag.answer.draft import Draft, Drafting, Event, ms
from rag.answer.generation import NO_ANSWER, Generated, Generation
from rag.answer.turn import TurnContext
from rag.guardrails.injection import instructs, looks_like_injection
from rag.knowledge.context import ContextSelector, Snippet, safe_sentences
from rag.knowledge.retrieval import Retriever
from rag.lang.frames import frame
from rag.settings import AnswerSettings
from rag.types import SearchFilters, SearchResult

log = logging.getLogger(__name__)


class KnowledgeStage:
    def __init__(
        self,
        retriever: Retriever,
        selector: ContextSelector,
        settings: AnswerSettings,
        generation: Generation | None = None,
    ) -> None:
        self.retriever = retriever
        self.selector = selector
        self.settings = settings
        self.generation = generation

    def draft(self, turn: TurnContext) -> Drafting:
        lang = turn.language
        t = time.perf_counter()
        filters = SearchFilters(market=turn.country)
        res = self.retriever.search(turn.query, None, filters)
        timings = {"retrieve": ms(t)}
        top = res.hits[0].chunk.doc_type if res.hits else None
        base = Draft(
            text=dont_know(lang),
            mode="dont_know",
            intent=top if res.confidence >= 0.5 else None,
            confidence=res.confidence,
            escalation=turn.signals,
            topic=top,
            timings=timings,
        )
        if not res.hits or res.confidence < self.settings.min_confidence:
            return base
        faq = self._faq(turn.query, res, lang, filters)
        if faq is not None:
            return replace(base, text=faq[0], sources=(faq[1],), mode="faq")
        snippets = [
            sn
            for sn in self.selector.select(
                res.query_vector, res.hits, budget_tokens=self.settings.context_tokens
            )
            if not looks_like_injection(sn.text)  # documents cannot instruct the model
        ]
        sourced = replace(base, sources=tuple(sources(res, snippets)))
        if self.generation is None or not snippets:
            return replace(sourced, text=extractive(lang, res, snippets), mode="extractive")
        t = time.perf_counter()
        gen = yield from self.generation.write(turn.message, lang, snippets)
        drafted = self._decide(sourced, gen, res, snippets, lang)
        if gen.streamed and drafted.text != gen.shown:  # the shopper saw another draft
            yield Event("replace", drafted.text)
        elif not gen.streamed:
            yield Event("token", drafted.text)
        return replace(
            drafted, usage=gen.usage, streamed=True, timings={**timings, "generate": ms(t)}
        )

    @staticmethod
    def _decide(
        draft: Draft, gen: Generated, res: SearchResult, snippets: list[Snippet], lang: str
    ) -> Draft:
        """The model's draft if it passed its checks; otherwise "don't know" when it declined
        on a weak match, else the extractive reply."""
        if gen.failed:
            return replace(draft, text=extractive(lang, res, snippets), mode="fallback")
        if gen.problem == NO_ANSWER and res.confidence < 0.6:
            return replace(draft, text=dont_know(lang), mode="dont_know", sources=())
        if gen.problem:
            log.info("draft rejected (%s); extractive fallback", gen.problem)
            return replace(draft, text=extractive(lang, res, snippets), mode="fallback")
        return replace(draft, text=gen.text, mode="llm")

    def _faq(
        self, query: str, res: SearchResult, lang: str, filters: SearchFilters
    ) -> tuple[str, dict[str, Any]] | None:
        """A curated FAQ answer when the question is a paraphrase of an FAQ's question.

        The shopper's question is compared with the FAQ *questions* (their headings), which
        separates paraphrases from merely related questions far better than the whole entry."""
        faq = self.retriever.search(
            query,
            3,
            SearchFilters(market=filters.market, doc_types=("faq",)),
            query_vector=res.query_vector,
        )
        entries = [(h, h.chunk.text.split("\n", 1)) for h in faq.hits if "\n" in h.chunk.text]
        if not entries:
            return None
        questions = [head.split(" — ", 1)[-1] for _, (head, _) in entries]
        vecs = self.selector.vectors(questions)
        sims = [sum(a * b for a, b in zip(res.query_vector, v, strict=True)) for v in vecs]
        order = sorted(range(len(sims)), key=lambda i: -sims[i])
        best = order[0]
        runner_up = sims[order[1]] if len(order) > 1 else 0.0
        hit, (_, answer) = entries[best]
        if (
            instructs(answer)  # an FAQ entry that gives orders is not quoted whole
            or sims[best] < self.settings.faq_threshold
            or sims[best] - runner_up < self.settings.faq_margin
            or hit.chunk.language != lang
        ):
            return None
        return answer.strip(), source(
            hit.chunk.doc_id, hit.chunk.title, hit.chunk.chunk_id, hit.score
        )


def dont_know(lang: str) -> str:
    return f"{frame(lang, 'dont_know')} {frame(lang, 'offer_human')}"


def extractive(lang: str, res: SearchResult, snippets: list[Snippet]) -> str:
    """A localised frame around the best passage, its source, and an offer of a human."""
    best = min((s.hit_index for s in snippets), default=0)
    picked = [s.text for s in snippets if s.hit_index == best][:3]
    if not picked and res.hits:
        picked = safe_sentences(res.hits[0].chunk.text)[:2]  # never a planted order
    title = res.hits[best].chunk.title if res.hits else ""
    passage = " ".join(picked)
    return (
        f"{frame(lang, 'extractive_intro')}\n\n“{passage}”\n\n"
        f"{frame(lang, 'source_line', title=title)}\n{frame(lang, 'offer_human')}"
    )


def sources(res: SearchResult, snippets: list[Snippet]) -> list[dict[str, Any]]:
    used = sorted({s.hit_index for s in snippets}) or [0]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in used:
        h = res.hits[i]
        if h.chunk.doc_id in seen:
            continue
        seen.add(h.chunk.doc_id)
        out.append(source(h.chunk.doc_id, h.chunk.title, h.chunk.chunk_id, h.score))
    return out


def source(doc_id: str, title: str, chunk_id: str, score: float) -> dict[str, Any]:
    return {"doc_id": doc_id, "title": title, "chunk_id": chunk_id, "score": round(score, 5)}
