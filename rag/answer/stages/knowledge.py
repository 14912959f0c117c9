"""The knowledge stage: retrieval, the FAQ fast path, answers restated from facts, fallbacks.

Every reply is right or honestly absent. Where the store has compiled facts, the question's
entities choose the facts in its scope (rag/knowledge/selection.py) and the model only restates
them in the shopper's language; every claim of its draft is checked against them
(rag/guardrails/claims.py). A draft that fails twice is replaced by the facts themselves: quoted
when the shopper reads their language, else translated by the model (a translation-only task,
checked the same way), else kefu says it cannot answer and offers a person. Stores without
facts fall back to selected sentences. When retrieval finds nothing relevant, kefu says so and
offers a person."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np

from rag.answer.draft import Draft, Drafting, Event, ms
from rag.answer.generation import NO_ANSWER, Generated, Generation
from rag.answer.turn import TurnContext
from rag.guardrails.injection import instructs, looks_like_injection
from rag.knowledge.asks import asked_cells
from rag.knowledge.context import ContextSelector, Snippet, safe_sentences
from rag.knowledge.facts import PATH_SEP, STATEMENT_SEP, Fact, fact_to_dict
from rag.knowledge.retrieval import Retriever
from rag.knowledge.selection import FactSelector, Selected
from rag.lang.frames import frame
from rag.settings import AnswerSettings
from rag.types import SearchFilters, SearchResult

log = logging.getLogger(__name__)
WIDE_K = 20  # hits whose documents may give facts
ANSWER_TOKENS = 110  # two answer facts are restated together up to this length


class KnowledgeStage:
    def __init__(
        self,
        retriever: Retriever,
        selector: ContextSelector,
        settings: AnswerSettings,
        generation: Generation | None = None,
        facts: FactSelector | None = None,
    ) -> None:
        self.retriever = retriever
        self.selector = selector
        self.settings = settings
        self.generation = generation
        self.facts = facts

    def draft(self, turn: TurnContext) -> Drafting:
        lang = turn.language
        t = time.perf_counter()
        filters = SearchFilters(market=turn.country)
        # facts are chosen from the documents of a wider net of hits than the passages
        wide = self.retriever.search(
            turn.query,
            max(WIDE_K, self.retriever.settings.k),
            filters,
            query_vector=turn.query_vector,  # the turn's one message vector, when it fits
        )
        res = replace(wide, hits=wide.hits[: self.retriever.settings.k])
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
        if self.facts is not None and self.facts.available():
            t = time.perf_counter()
            entities = self.facts.entities(turn.query, lang, turn.country, message=turn.message)
            chosen = self.facts.select(
                wide.query_vector, wide.hits, entities, budget_tokens=self.settings.facts_tokens
            )
            timings = {**timings, "select": ms(t)}
            if not chosen or max(s.relevance for s in chosen) < self.settings.min_fact_score:
                # no fact in the question's scope is close enough: honestly absent
                return replace(base, timings=timings)
            base = replace(base, timings=timings)
            return (yield from self._from_facts(turn, base, wide, chosen, entities.asks))
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

    def _from_facts(
        self,
        turn: TurnContext,
        base: Draft,
        res: SearchResult,
        chosen: list[Selected],
        asks: frozenset[str] = frozenset(),
    ) -> Drafting:
        """The answer facts, quoted when the shopper reads their language (or no model is
        configured), else translated by the model and checked claim by claim; a translation
        that fails twice gives an honest "I cannot answer that" in the shopper's language,
        never a quote in a language the shopper did not write. A table row is cut to the
        cells of the kind of quantity asked for (`asks`: a duration, an amount)."""
        lang = turn.language
        answer = self._answer_facts(chosen)
        snippets = [
            Snippet(s.hit_index, res.hits[s.hit_index].chunk.title, line(s.fact, asks), s.score)
            for s in answer
        ]
        sourced = replace(
            base, sources=tuple(sources(res, snippets)), facts=tuple(used(s) for s in answer)
        )
        if self.generation is None or all(same_language(s.fact, lang) for s in answer):
            mode = "facts" if all(same_language(s.fact, lang) for s in answer) else "extractive"
            return replace(sourced, text=quoted_facts(lang, res, snippets), mode=mode)
        t = time.perf_counter()
        gen = yield from self.generation.write(turn.message, lang, snippets, facts=True)
        if not gen.failed and gen.problem is None:
            title = res.hits[answer[0].hit_index].chunk.title
            text = f"{gen.text}\n\n{frame(lang, 'source_line', title=title)}"
            drafted = replace(sourced, text=text, mode="llm")
        else:
            log.info("translation rejected (%s); kefu says so", gen.problem or "model failed")
            drafted = replace(sourced, text=dont_know(lang), mode="dont_know")
        if gen.streamed and drafted.text != gen.shown:  # the shopper saw another draft
            yield Event("replace", drafted.text)
        elif not gen.streamed:
            yield Event("token", drafted.text)
        timings = {**base.timings, "generate": ms(t)}
        return replace(drafted, usage=gen.usage, streamed=True, timings=timings)

    def _answer_facts(self, chosen: list[Selected]) -> list[Selected]:
        """What the reply restates: the answer fact, with the other service level's row of its
        table (standard and express, when the question named neither), else with the next fact
        when both are short (two sentences of one rule)."""
        first = chosen[0]
        # a row of one service level goes with the other service's row of the same table
        # (the selection only keeps both when the question named no service)
        sibling = next(
            (
                s
                for s in chosen[1:]
                if first.fact.scope.service
                and s.fact.scope.service not in (None, first.fact.scope.service)
                and s.fact.heading_path == first.fact.heading_path
            ),
            None,
        )
        second = sibling or (chosen[1] if len(chosen) > 1 else None)
        if second is not None:
            pair = self.selector.counter.count(line(first.fact) + line(second.fact))
            if sibling is not None or pair <= ANSWER_TOKENS:
                return [first, second]
        return [first]

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
        sims = (np.asarray(self.selector.vectors(questions)) @ res.query_vector).tolist()
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


def used(s: Selected) -> dict[str, Any]:
    """A chosen fact as the reply reports it: its text, document and scope (the restrictions
    it has; countries it only names in passing are left out)."""
    scope = fact_to_dict(s.fact)["scope"]
    assert isinstance(scope, dict)
    return {
        "text": s.fact.text,
        "doc_id": s.fact.doc_id,
        "scope": {k: v for k, v in scope.items() if v and k != "mentions"},
        "score": round(s.score, 4),
    }


def line(f: Fact, asks: frozenset[str] = frozenset()) -> str:
    """A fact as the shopper reads it: its section path (the scope: "Orders up to €150",
    "Zones, delivery times and fees") and statement, a table row cut to the cells of the kind
    of quantity asked for; the document's title is the source line."""
    path = f.heading_path[1:]
    statement = asked_cells(f.statement, asks, lang=f.language) if f.kind == "row" else f.statement
    return f"{PATH_SEP.join(path)}{STATEMENT_SEP}{statement}" if path else statement


def same_language(f: Fact, lang: str) -> bool:
    """Whether a shopper writing `lang` reads the fact's language (catalog text of unknown
    language is English)."""
    fact_lang = "en" if f.language in ("", "und") else f.language
    return fact_lang.split("-")[0] == lang.split("-")[0]


def quoted_facts(lang: str, res: SearchResult, answer: list[Snippet]) -> str:
    """A localised frame around the answer facts (each with its section path: the scope it is
    about), their source, and an offer of a person."""
    title = res.hits[answer[0].hit_index].chunk.title
    passage = "\n".join(s.text for s in answer)
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
