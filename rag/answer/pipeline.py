"""The answer pipeline: language, retrieval, FAQ fast path, grounded generation, fallbacks.

Every reply is grounded or honest. The LLM sees only selected context sentences; its draft is
checked (numbers must come from the context, the language must be the shopper's), retried once
with a stricter instruction, and otherwise replaced by an extractive reply quoting the policy.
When retrieval finds nothing relevant, kefu says so and offers a human.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.answer.prompts import Prompt, load_prompt
from rag.commerce.orders import OrderAssistant
from rag.commerce.personalisation import Personal, Personaliser
from rag.conversations.store import ConversationStore, Turn
from rag.errors import KefuError
from rag.guardrails.escalation import Escalation, EscalationPolicy
from rag.guardrails.grounding import repeats_question, ungrounded_numbers, wrong_language
from rag.guardrails.injection import instructs, leaks, looks_like_injection
from rag.guardrails.pii import redact
from rag.knowledge.context import ContextSelector, Snippet, safe_sentences
from rag.knowledge.retrieval import Retriever
from rag.lang.frames import (
    country_mentioned,
    country_name_in,
    frame,
    language_name,
    language_name_in,
)
from rag.ports import ChatModel, LanguageDetector, OrderConnector, TokenCounter
from rag.settings import AnswerSettings, LLMSettings
from rag.textutil import lexical_tokens
from rag.types import Message, SearchFilters, SearchResult

log = logging.getLogger(__name__)
NO_ANSWER = "NO_ANSWER"


@dataclass(frozen=True)
class AskRequest:
    message: str
    session_id: str | None = None
    customer_id: str | None = None
    country: str | None = None
    locale: str | None = None
    email: str | None = None  # the shopper's e-mail, when the storefront or shopper gave it
    # the real client address (the server resolves trusted proxies); failed order checks are
    # also counted per address
    client_address: str | None = None


@dataclass
class Reply:
    reply: str
    language: str
    sources: list[dict[str, Any]]
    escalation: dict[str, Any]
    intent: str | None
    confidence: float
    prompt_version: str
    model: str
    timings_ms: dict[str, float]
    session_id: str
    mode: str  # llm | faq | extractive | dont_know | fallback | handoff | order | order_ask ...
    usage: dict[str, int] = field(default_factory=dict)
    country: str | None = None
    personalisation: list[str] = field(default_factory=list)  # ids of the rules that applied
    order: str | None = None  # the order number this turn was about

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Event:
    """A streaming event: token, replace (the streamed draft was corrected), sources,
    escalation, done (carries the whole Reply), error."""

    type: str
    data: Any


class _Timeout(Exception):
    pass


class AnswerPipeline:
    def __init__(
        self,
        *,
        retriever: Retriever,
        detector: LanguageDetector,
        counter: TokenCounter,
        conversations: ConversationStore,
        llm: ChatModel | None,
        settings: AnswerSettings,
        llm_settings: LLMSettings,
        escalation: EscalationPolicy | None = None,
        orders: OrderAssistant | None = None,
        customers: OrderConnector | None = None,
        personaliser: Personaliser | None = None,
        seller_language: str = "en",
    ) -> None:
        self.escalation = escalation
        self.orders = orders
        self.customers = customers
        self.personaliser = personaliser
        self.seller_language = seller_language
        self.retriever = retriever
        self.detector = detector
        self.counter = counter
        self.conversations = conversations
        self.llm = llm
        self.settings = settings
        self.llm_settings = llm_settings
        self.selector = ContextSelector(retriever.embedder, counter)
        self.prompt: Prompt = load_prompt("answer", settings.prompt_version)

    # -- public -------------------------------------------------------------------------------
    def answer(self, req: AskRequest) -> Reply:
        for ev in self.stream(req):
            if ev.type == "done":
                reply: Reply = ev.data
                return reply
        raise KefuError("the answer stream ended without a reply")  # pragma: no cover

    def stream(self, req: AskRequest) -> Iterator[Event]:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        session_id = req.session_id or uuid.uuid4().hex
        history = self.conversations.history(session_id, self.settings.history_turns)
        session = self.conversations.session(session_id) or {}
        hint = (req.locale or "").split("-")[0] or next(
            (t.language for t in reversed(history) if t.role == "user" and t.language), None
        )
        lang, _ = self.detector.detect(req.message, hint=hint)
        if lang == "und":
            lang = hint or "en"
        country = req.country or country_mentioned(req.message) or session.get("country") or None
        country = country.upper() if country else None
        query = self._standalone_query(req.message, history)
        reply = Reply(
            reply="",
            language=lang,
            sources=[],
            escalation=Escalation(False).to_dict(),
            intent=None,
            confidence=0.0,
            prompt_version=self.prompt.id,
            model=self.llm.name if self.llm else "none",
            timings_ms=timings,
            session_id=session_id,
            mode="dont_know",
            country=country,
        )

        sent_text = False
        customer_key = req.customer_id or req.email or session.get("customer_id")
        personal = self._personal(customer_key, lang)
        active = self.conversations.active_handoff(session_id)
        pre = (
            self.escalation.before_answer(req.message, personal.routing)
            if self.escalation and active is None
            else Escalation(False)
        )
        if active is not None:
            # a person has the conversation: the bot stays silent, no loops
            reply.reply, reply.mode = frame(lang, "handoff_pending"), "handoff_pending"
            reply.escalation = Escalation(True, str(active["reason"])).to_dict()
        elif looks_like_injection(req.message):
            reply.reply, reply.mode = frame(lang, "injection_refusal"), "refused"
            reply.intent = "injection"
        elif pre.escalate:
            self._hand_off(req, reply, pre, history)
        elif self.orders is not None and self.orders.wants(req.message, session_id):
            t = time.perf_counter()
            customer_key = self._order_turn(req, reply, pre, personal, history) or customer_key
            if customer_key and not personal.rule_ids:  # a verified order tells who is asking
                personal = self._personal(customer_key, lang)
            timings["order"] = _ms(t)
        else:
            for ev in self._answer(
                req, query, lang, country, reply, timings, pre, history, personal
            ):
                sent_text = sent_text or ev.type in {"token", "replace"}
                yield ev

        reply.personalisation = personal.rule_ids
        if personal.facts and reply.mode in {"llm", "faq", "extractive", "fallback", "order"}:
            extra = f"{frame(lang, 'personal_intro')} {' '.join(personal.facts)}"
            reply.reply = f"{reply.reply}\n\n{extra}"
            if sent_text:
                yield Event("replace", reply.reply)

        timings["total"] = _ms(t0)
        self._record(req, reply, session_id, country, customer_key)
        if not sent_text:  # replies that were not generated token by token arrive whole
            yield Event("token", reply.reply)
        yield Event("sources", reply.sources)
        yield Event("escalation", reply.escalation)
        yield Event("done", reply)

    # -- steps --------------------------------------------------------------------------------
    def _answer(
        self,
        req: AskRequest,
        query: str,
        lang: str,
        country: str | None,
        reply: Reply,
        timings: dict[str, float],
        pre: Escalation,
        history: list[Turn],
        personal: Personal,
    ) -> Iterator[Event]:
        t = time.perf_counter()
        filters = SearchFilters(market=country)
        res = self.retriever.search(query, None, filters)
        timings["retrieve"] = _ms(t)
        reply.confidence = round(res.confidence, 3)
        reply.intent = res.hits[0].chunk.doc_type if res.hits and res.confidence >= 0.5 else None
        reply.escalation = pre.to_dict()

        if not res.hits or res.confidence < self.settings.min_confidence:
            reply.reply = self._dont_know(lang)
        elif (faq := self._faq(query, res, lang, filters)) is not None:
            reply.reply, reply.sources, reply.mode = faq[0], faq[1], "faq"
        else:
            snippets = [
                sn
                for sn in self.selector.select(
                    res.query_vector, res.hits, budget_tokens=self.settings.context_tokens
                )
                if not looks_like_injection(sn.text)  # documents cannot instruct the model
            ]
            reply.sources = self._sources(res, snippets)
            if self.llm is None or not snippets:
                reply.reply, reply.mode = self._extractive(lang, res, snippets), "extractive"
            else:
                t = time.perf_counter()
                yield from self._generate(req, lang, res, snippets, reply)
                timings["generate"] = _ms(t)

        if self.escalation is not None:
            post = self.escalation.after_answer(
                valence=pre.score,
                confidence=res.confidence,
                topic=reply.intent or (res.hits[0].chunk.doc_type if res.hits else None),
                failures=self.conversations.failures_since_handoff(reply.session_id),
                answered=reply.mode in {"llm", "faq", "extractive"},
                routing=personal.routing,
            )
            if post.escalate:
                answer = reply.reply if reply.mode in {"llm", "faq", "extractive"} else ""
                self._hand_off(req, reply, post, history)
                if answer:
                    reply.reply = f"{answer}\n\n{reply.reply}"
                yield Event("replace", reply.reply)

    def _personal(self, key: str | None, lang: str) -> Personal:
        """The seller's personalisation rules applied to this shopper's profile, if known."""
        if self.personaliser is None or self.customers is None or not key:
            return Personal()
        try:
            customer = self.customers.get_customer(key)
        except KefuError as exc:  # the storefront is down: answer without personalisation
            log.warning("customer lookup failed (%s)", exc.__class__.__name__)
            return Personal()
        return self.personaliser.apply(customer, lang)

    def _order_turn(
        self,
        req: AskRequest,
        reply: Reply,
        pre: Escalation,
        personal: Personal,
        history: list[Turn],
    ) -> str | None:
        """Order tracking: the reply is built from order data (rag/commerce/orders.py), never
        generated.         Returns the customer id of a verified order."""
        assert self.orders is not None
        out = self.orders.handle(
            req.message,
            lang=reply.language,
            session_id=reply.session_id,
            email=req.email,
            customer_id=req.customer_id,
            order_problem_to_human=bool(personal.routing and personal.routing.order_problem),
            client_address=req.client_address,
        )
        reply.reply, reply.mode, reply.sources = out.text, out.mode, out.sources
        reply.order, reply.intent = out.order_number, "order_status"
        reply.confidence = 1.0 if out.mode == "order" else 0.0
        reply.escalation = pre.to_dict()
        if out.escalate:
            self._hand_off(req, reply, Escalation(True, out.escalate, pre.score), history)
            reply.reply = f"{out.text}\n\n{reply.reply}"
            reply.mode = "order_handoff"
        return out.customer_id

    def _hand_off(
        self, req: AskRequest, reply: Reply, esc: Escalation, history: list[Turn]
    ) -> None:
        """Open a handoff for an agent and tell the shopper a person will take over."""
        first = next((t.content for t in history if t.role == "user"), req.message)
        summary = frame(
            self.seller_language,
            "handoff_summary",
            reason=str(esc.reason),
            language=language_name_in(reply.language, self.seller_language),
            country=country_name_in(reply.country, self.seller_language) if reply.country else "-",
            turns=str(len(history) // 2 + 1),
            order=f"#{reply.order}" if reply.order else "-",
            first=repr(first[:200]),
            last=repr(req.message[:200]),
        )
        self.conversations.open_handoff(
            reply.session_id,
            reason=str(esc.reason),
            language=reply.language,
            summary=summary,
            customer_id=req.customer_id,
        )
        reply.reply = frame(reply.language, "handoff", hours=self.settings.support_hours)
        reply.mode = "handoff"
        reply.escalation = esc.to_dict()

    def _standalone_query(self, message: str, history: list[Turn]) -> str:
        """A follow-up ("and to Canada?") is searched together with the previous question."""
        prev = next((t.content for t in reversed(history) if t.role == "user"), None)
        if prev and len(lexical_tokens(message)) <= 6:
            return f"{prev}\n{message}"
        return message

    def _faq(
        self, query: str, res: SearchResult, lang: str, filters: SearchFilters
    ) -> tuple[str, list[dict[str, Any]]] | None:
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
        src = self._source(hit.chunk.doc_id, hit.chunk.title, hit.chunk.chunk_id, hit.score)
        return answer.strip(), [src]

    def _generate(
        self,
        req: AskRequest,
        lang: str,
        res: SearchResult,
        snippets: list[Snippet],
        reply: Reply,
    ) -> Iterator[Event]:
        assert self.llm is not None
        lname = language_name(lang)
        # personal data never leaves for the model; placeholders are mapped back below
        red = redact(req.message)
        user = self.prompt.render(
            "user",
            sources=[{"title": s.title, "text": s.text} for s in snippets],
            facts=[],
            question=red.text,
            language_name=lname,
        )
        messages = [Message("system", self.prompt.render("system")), Message("user", user)]
        allowed = [s.text for s in snippets] + [req.message]
        deadline = time.monotonic() + self.llm_settings.timeout_s
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        streamed = False
        draft = ""
        try:
            pieces: list[str] = []
            held = ""  # hold the first characters back until we know it is not NO_ANSWER
            for piece in self._tokens(messages, deadline):
                pieces.append(piece)
                if streamed:
                    yield Event("token", piece)
                    continue
                held += piece
                if len(held.strip()) >= len(NO_ANSWER) and not held.strip().startswith("NO_"):
                    streamed = True
                    yield Event("token", held)
            draft = red.restore("".join(pieces).strip())
            self._add_usage(usage)
            problem = self._problem(draft, lang, allowed)
            if problem and problem != NO_ANSWER:
                strict = [
                    *messages[:-1],
                    Message(
                        "user",
                        user
                        + "\n"
                        + self.prompt.render("strict_suffix", problem=problem, language_name=lname),
                    ),
                ]
                draft = red.restore("".join(self._tokens(strict, deadline)).strip())
                self._add_usage(usage)
                problem = self._problem(draft, lang, allowed)
            if problem == NO_ANSWER and res.confidence < 0.6:
                reply.reply, reply.mode, reply.sources = self._dont_know(lang), "dont_know", []
            elif problem:
                log.info("draft rejected (%s); extractive fallback", problem)
                reply.reply, reply.mode = self._extractive(lang, res, snippets), "fallback"
            else:
                reply.reply, reply.mode = draft, "llm"
        except (_Timeout, KefuError) as exc:
            log.warning("LLM unavailable (%s); extractive fallback", exc.__class__.__name__)
            reply.reply, reply.mode = self._extractive(lang, res, snippets), "fallback"
        reply.usage = usage
        if streamed and reply.reply != draft:
            yield Event("replace", reply.reply)
        elif not streamed:
            yield Event("token", reply.reply)

    def _problem(self, draft: str, lang: str, allowed: list[str]) -> str | None:
        if not draft or NO_ANSWER in draft:
            return NO_ANSWER
        if repeats_question(draft, allowed[-1]):
            return "repeated the question instead of answering"
        leak = leaks(draft, system_prompt=self.prompt.render("system"), context=allowed)
        if leak:
            return leak
        bad = ungrounded_numbers(draft, allowed)
        if bad:
            return "numbers not in CONTEXT: " + ", ".join(sorted(bad))
        other = wrong_language(draft, lang, self.detector)
        if other:
            return f"wrong language {other}"
        return None

    def _tokens(self, messages: list[Message], deadline: float) -> Iterator[str]:
        """The model's tokens, produced in a worker thread so that a stalled model cannot
        block past the time budget."""
        assert self.llm is not None
        llm = self.llm
        q: queue.Queue[tuple[str, Any]] = queue.Queue()
        cancel = threading.Event()

        def work() -> None:
            try:
                for piece in llm.stream(
                    messages,
                    max_tokens=self.llm_settings.max_tokens,
                    temperature=self.llm_settings.temperature,
                ):
                    if cancel.is_set():
                        break
                    q.put(("token", piece))
                q.put(("end", None))
            except Exception as exc:  # handed to the caller's thread
                q.put(("error", exc))

        threading.Thread(target=work, daemon=True, name="kefu-llm").start()
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Timeout()
                try:
                    kind, value = q.get(timeout=remaining)
                except queue.Empty as exc:
                    raise _Timeout() from exc
                if kind == "token":
                    yield value
                elif kind == "end":
                    return
                else:
                    if isinstance(value, KefuError):
                        raise value
                    raise KefuError(f"LLM failed: {value}") from value
        finally:
            cancel.set()

    def _add_usage(self, usage: dict[str, int]) -> None:
        last = getattr(self.llm, "last_usage", None) or {}
        for k in usage:
            usage[k] += int(last.get(k, 0))

    def _dont_know(self, lang: str) -> str:
        return f"{frame(lang, 'dont_know')} {frame(lang, 'offer_human')}"

    def _extractive(self, lang: str, res: SearchResult, snippets: list[Snippet]) -> str:
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

    def _sources(self, res: SearchResult, snippets: list[Snippet]) -> list[dict[str, Any]]:
        used = sorted({s.hit_index for s in snippets}) or [0]
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i in used:
            h = res.hits[i]
            if h.chunk.doc_id in seen:
                continue
            seen.add(h.chunk.doc_id)
            out.append(self._source(h.chunk.doc_id, h.chunk.title, h.chunk.chunk_id, h.score))
        return out

    @staticmethod
    def _source(doc_id: str, title: str, chunk_id: str, score: float) -> dict[str, Any]:
        return {"doc_id": doc_id, "title": title, "chunk_id": chunk_id, "score": round(score, 5)}

    def _record(
        self,
        req: AskRequest,
        reply: Reply,
        session_id: str,
        country: str | None,
        customer_id: str | None,
    ) -> None:
        self.conversations.append(
            session_id,
            Turn(role="user", content=req.message, language=reply.language),
            customer_id=customer_id,
            country=country,
        )
        self.conversations.append(
            session_id,
            Turn(
                role="assistant",
                content=reply.reply,
                language=reply.language,
                meta={
                    "mode": reply.mode,
                    "sources": [s["doc_id"] for s in reply.sources],
                    "confidence": reply.confidence,
                    "prompt_version": reply.prompt_version,
                    "model": reply.model,
                    "personalisation": reply.personalisation,
                    "order": reply.order,
                    "usage": reply.usage,
                    "timings_ms": reply.timings_ms,
                },
            ),
        )


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 1)
