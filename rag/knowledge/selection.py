"""Entity-aware fact selection: the few facts that answer a question, in its scope.

The question's entities (destination country and its regions, product, service level,
segment, an order total) decide which facts may answer: a fact scoped to another market,
product, service level or segment is never chosen (rag.knowledge.entities.scope_match), and
among the rest a fact about exactly what was asked beats a general one. Similarity to the
question (one matrix product over the facts' stored vectors) ranks what remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from rag.guardrails.injection import instructs
from rag.knowledge.asks import asked_kinds, stated_kinds
from rag.knowledge.entities import Entities, extract_entities, scope_match
from rag.knowledge.facts import Fact
from rag.knowledge.index import KnowledgeIndex
from rag.ports import TokenCounter
from rag.types import SearchHit

# how much a specific scope match adds to a similarity (scope_match is 1.0 for an
# unrestricted fact and grows by ~1-3 per matching restriction)
SPECIFICITY = 0.03
# facts within this much of the best one's score may join it in the prompt
MARGIN = 0.08
# a sentence about other countries ("Mexico usually takes 10–18 days") is not excluded for a
# question about Germany (it may state a rule for everyone), but it ranks below one that is not
ABOUT_OTHERS = 0.06
# a fact that states the kind of quantity asked for ("how long": a duration, "how much": an
# amount) ranks above one close to the question that does not (a customs page that names the
# country, for "how long does shipping to Australia take?")
ANSWER_KIND = 0.05


@dataclass(frozen=True)
class Selected:
    fact: Fact
    score: float  # similarity plus the specificity bonus
    hit_index: int  # the retrieved hit whose document the fact comes from (for sources)
    kind_bonus: float = 0.0  # the part of the score for stating the kind of quantity asked

    @property
    def relevance(self) -> float:
        """How close the fact is to the question in its scope, without the asked-kind bonus:
        what the answer threshold compares (a duration does not make a fact about something
        else an answer to "how long does X last?")."""
        return self.score - self.kind_bonus


class FactSelector:
    def __init__(self, index: KnowledgeIndex, counter: TokenCounter) -> None:
        self.index = index
        self.counter = counter
        self._catalog: tuple[int, tuple[str, ...]] = (-1, ())
        self._has_facts: tuple[int, bool] = (-1, False)

    def available(self) -> bool:
        """Whether the store has compiled facts (a store synced before facts existed has none
        until its next sync; it is answered from sentences meanwhile)."""
        version = self.index.version()
        if self._has_facts[0] != version:
            self._has_facts = (version, self.index.fact_count() > 0)
        return self._has_facts[1]

    def catalog_names(self) -> tuple[str, ...]:
        """The store's product titles (cached per index version)."""
        version = self.index.version()
        if self._catalog[0] != version:
            names = sorted({d.title for d in self.index.documents() if d.doc_type == "product"})
            self._catalog = (version, tuple(names))
        return self._catalog[1]

    def entities(
        self, question: str, lang: str, country: str | None, *, message: str | None = None
    ) -> Entities:
        """The question's entities; the kinds of quantity asked for come from the shopper's
        own `message` when given (a follow-up, "and to the UK?", asks for what the answer
        before it stated, so nothing is cut from it), else from the question."""
        found = extract_entities(
            question, lang=lang, country_hint=country, catalog_names=self.catalog_names()
        )
        return replace(found, asks=asked_kinds(question if message is None else message))

    def select(
        self,
        query_vector: Sequence[float],
        hits: Sequence[SearchHit],
        entities: Entities,
        *,
        budget_tokens: int = 160,
        max_docs: int = 4,
        max_facts: int = 4,
    ) -> list[Selected]:
        """The answer fact first, then the facts close to it in score, within the budget."""
        doc_hit: dict[str, int] = {}
        for i, h in enumerate(hits):
            if h.chunk.doc_id not in doc_hit:
                doc_hit[h.chunk.doc_id] = i
            if len(doc_hit) >= max_docs:
                break
        facts, matrix = self.index.facts_of(list(doc_hit))
        if not facts:
            return []
        q = np.asarray(query_vector, dtype=np.float32)
        sims = matrix @ q
        ranked: list[Selected] = []
        for fact, sim in zip(facts, sims.tolist(), strict=True):
            match = scope_match(fact.scope, entities)
            if match is None or instructs(fact.statement):
                continue
            score = sim + SPECIFICITY * (match - 1.0)
            if (
                entities.country
                and fact.scope.mentions
                and entities.country not in fact.scope.mentions
            ):
                score -= ABOUT_OTHERS
            # in proportion to the kinds asked that the fact states (how long and how much:
            # the row with both ranks above a sentence with one)
            bonus = (
                ANSWER_KIND
                * len(entities.asks & _kinds(fact.statement, fact.language))
                / len(entities.asks)
                if entities.asks
                else 0.0
            )
            ranked.append(Selected(fact, score + bonus, doc_hit[fact.doc_id], bonus))
        if not ranked:
            return []
        ranked.sort(key=lambda s: -s.score)
        best = ranked[0].score
        chosen: list[Selected] = []
        used = 0
        for s in ranked:
            if s.score < best - MARGIN or len(chosen) >= max_facts:
                break
            cost = self.counter.count(s.fact.text)
            if chosen and used + cost > budget_tokens:
                continue
            chosen.append(s)
            used += cost
        if entities.service is None:
            # a question that names no service level is about the default one: within a table,
            # the standard row comes before the express row (the model restates the first)
            first: dict[tuple[str, ...], int] = {}
            for i, s in enumerate(chosen):
                first.setdefault(s.fact.heading_path, i)
            chosen.sort(
                key=lambda s: (first[s.fact.heading_path], s.fact.scope.service == "express")
            )
        return chosen


@lru_cache(maxsize=8192)
def _kinds(statement: str, lang: str) -> frozenset[str]:
    return stated_kinds(statement, lang=lang)
