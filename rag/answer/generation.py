"""The model's draft of a grounded answer: one call under a deadline, checked, retried once
with a stricter instruction when a check fails.

The model sees only the selected context sentences and the question with personal data
replaced by placeholders. A draft must not repeat the question, leak the instructions, state
numbers that are not in the context, or be in another language than the shopper's."""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass

from rag.answer.draft import Event
from rag.answer.masking import Masked, Unmasker, mask
from rag.answer.prompts import Prompt
from rag.errors import KefuError, ModelUnavailable
from rag.guardrails.claims import (
    claim_problem,
    place_problem,
    strip_verdict,
    unit_problem,
    verdict_problem,
)
from rag.guardrails.grounding import repeats_question, ungrounded_numbers, wrong_language
from rag.guardrails.injection import leaks
from rag.guardrails.pii import redact
from rag.knowledge.context import Snippet
from rag.lang.frames import language_name
from rag.ports import ChatModel, ChatStream, LanguageDetector, Usage
from rag.settings import LLMSettings
from rag.textutil import numbers_in
from rag.types import Message

log = logging.getLogger(__name__)
NO_ANSWER = "NO_ANSWER"


class _Timeout(Exception):
    pass


def _missing_numbers(text: str, sources: Sequence[str]) -> str | None:
    """A translation keeps every number of its source."""
    said = numbers_in(text)
    missing = sorted(set().union(*(numbers_in(s) for s in sources)) - said) if sources else []
    return "numbers dropped: " + ", ".join(missing) if missing else None


@dataclass(frozen=True)
class Generated:
    """What the model wrote for one turn."""

    text: str  # the last draft, personal data restored ("" when none was complete)
    problem: str | None  # why the last draft failed its checks (NO_ANSWER: it declined)
    failed: bool  # the model timed out or failed: there is no usable draft
    streamed: bool  # the first draft's tokens went out as it was written
    usage: Usage  # the tokens of the calls that completed
    shown: str = ""  # what the shopper saw streamed (the first draft, or part of it)


# the retry's rule translated into the reply ("您的上一次翻译违反了规则（placeholders丢失…）"
# reached a shopper on the golden set): the words of the rule, in the languages the model
# turns it into
_INSTRUCTION_ECHO = re.compile(
    r"(?i)placeholder|占位符|プレースホルダ|marcador(?:es)? de posición|platzhalter|espace réservé|"
    r"segnaposto|espaço reservado|заполнител|broke the rules|previous (?:translation|reply)|"
    r"违反了规则|上一次翻译|上次的翻译"
)
_LOOP_WINDOW = 240
_LOOP = re.compile(r"(.{6,80}?)(?:\s*\1){4,}\s*$", re.DOTALL)


def looping(text: str) -> bool:
    """Whether a text ends with the same phrase five times or more in a row."""
    return _LOOP.search(text) is not None


class DraftChecks:
    """The checks on a model's draft, in order; each returns None or the problem found."""

    def __init__(self, detector: LanguageDetector, *, system_prompt: str) -> None:
        self.detector = detector
        self.system_prompt = system_prompt

    def verdict(
        self,
        draft: str,
        lang: str,
        allowed: Sequence[str],
        *,
        facts: bool = False,
        figures_kept: bool = False,
        places: Sequence[str] = (),
    ) -> str | None:
        """`allowed` is the context the draft may draw on, the shopper's question last; with
        `facts`, the context is selected facts (the answer fact first) and every claim of the
        draft is checked against them (rag.guardrails.claims). `figures_kept`: the facts'
        figures were placeholders whose presence was checked already (a digit inside a name,
        "4PX", may then be left out with the name). A country the draft names must be named by
        a fact, the question or one of `places` (the facts' document titles: "Japanese
        shoppers" in a fact from the Japan page may become "shoppers in Japan")."""
        if not draft or NO_ANSWER in draft:
            return NO_ANSWER
        # over facts the model translates them and never sees the question: it cannot echo it
        if not facts and repeats_question(draft, allowed[-1]):
            return "repeated the question instead of answering"
        leak = leaks(draft, system_prompt=self.system_prompt, context=list(allowed))
        if leak:
            return leak
        if facts:
            problem = (
                claim_problem(draft, allowed[:-1], allowed[-1])
                or place_problem(draft, [*allowed, *places], lang)
                or verdict_problem(draft, allowed[:-1], lang)
                or unit_problem(draft, allowed[:-1])
            )
            if problem:
                return problem
            missing = None if figures_kept else _missing_numbers(draft, allowed[:-1])
            if missing:
                return missing
        else:
            bad = ungrounded_numbers(draft, list(allowed))
            if bad:
                return "numbers not in CONTEXT: " + ", ".join(sorted(bad))
        other = wrong_language(draft, lang, self.detector)
        if other:
            return f"wrong language {other}"
        return None


class Generation:
    def __init__(
        self,
        llm: ChatModel,
        *,
        prompt: Prompt,
        llm_settings: LLMSettings,
        detector: LanguageDetector,
    ) -> None:
        self.llm = llm
        self.prompt = prompt
        self.llm_settings = llm_settings
        self.checks = DraftChecks(detector, system_prompt=prompt.render("system"))

    def write(
        self, message: str, lang: str, snippets: Sequence[Snippet], *, facts: bool = False
    ) -> Generator[Event, None, Generated]:
        """Stream the first draft as token events (held back until it cannot be NO_ANSWER);
        a retry is not streamed. Returns the outcome; the caller decides the reply. With
        `facts`, the snippets are selected facts (the answer fact first): an opening yes/no is
        removed and every claim is checked against them."""
        lname = language_name(lang)
        # personal data never leaves for the model; placeholders are mapped back below
        red = redact(message)
        # the facts' figures, replaced by placeholders while the model translates (masking.py)
        masked = (
            mask([s.text for s in snippets])
            if facts and self.prompt.figures == "placeholders"
            else None
        )
        if facts:  # the model only translates the chosen facts: it is not a source of facts
            texts = masked.texts if masked is not None else [s.text for s in snippets]
            system = self.prompt.render("translate_system")
            user = self.prompt.render(
                "translate_user", sources=[{"text": t} for t in texts], language_name=lname
            )
        else:
            system = self.prompt.render("system")
            user = self.prompt.render(
                "user",
                sources=[{"title": s.title, "text": s.text} for s in snippets],
                facts=[],
                question=red.text,
                language_name=lname,
            )
        messages = [Message("system", system), Message("user", user)]
        allowed = [s.text for s in snippets] + [message]
        places = sorted({s.title for s in snippets})  # countries in scope besides the facts'
        deadline = time.monotonic() + self.llm_settings.timeout_s
        usage = Usage()
        streamed = False
        draft = ""
        pieces: list[str] = []
        raw: list[str] = []  # what the model wrote, placeholders and all
        try:
            first = self._call(messages, deadline)
            held = ""  # hold the first characters back until we know it is not NO_ANSWER
            unmask = Unmasker(masked) if masked is not None else None
            for token in first:
                raw.append(token)
                piece = unmask.feed(token) if unmask is not None else token
                pieces.append(piece)
                if streamed:
                    yield Event("token", piece)
                    continue
                held += piece
                if len(held.strip()) >= len(NO_ANSWER) and not held.strip().startswith("NO_"):
                    if facts:  # "Yes, …" never reaches the shopper
                        held = strip_verdict(held, lang)
                        pieces[:] = [held]
                    streamed = True
                    yield Event("token", held)
            if unmask is not None:
                tail = unmask.flush()
                pieces.append(tail)
                if streamed and tail:
                    yield Event("token", tail)
            draft = self._clean(red.restore("".join(pieces).strip()), lang, facts)
            usage += first.usage or Usage()
            problem = self._verdict(
                "".join(raw), draft, lang, allowed, masked, facts=facts, places=places
            )
            if problem and problem != NO_ANSWER:
                part = "translate_strict" if facts else "strict_suffix"
                strict = self.prompt.render(part, problem=problem, language_name=lname)
                # the rule follows the text (the 0.5B model keeps placeholders better so than
                # with the rule in the system prompt); a draft that translates the rule itself
                # into the reply fails below
                again = self._call([*messages[:-1], Message("user", f"{user}\n{strict}")], deadline)
                retry = "".join(again)
                text = masked.restore(retry) if masked is not None else retry
                draft = self._clean(red.restore(text.strip()), lang, facts)
                usage += again.usage or Usage()
                problem = (
                    "repeated the instruction"
                    if _INSTRUCTION_ECHO.search(retry)
                    else self._verdict(
                        retry, draft, lang, allowed, masked, facts=facts, places=places
                    )
                )
        except (_Timeout, KefuError) as exc:
            log.warning("LLM unavailable (%s); the stage falls back", exc.__class__.__name__)
            shown = "".join(pieces) if streamed else ""
            return Generated(draft, None, failed=True, streamed=streamed, usage=usage, shown=shown)
        shown = "".join(pieces).strip() if streamed else ""
        return Generated(draft, problem, failed=False, streamed=streamed, usage=usage, shown=shown)

    def _verdict(
        self,
        raw: str,
        draft: str,
        lang: str,
        allowed: Sequence[str],
        masked: Masked | None,
        *,
        facts: bool,
        places: Sequence[str] = (),
    ) -> str | None:
        """The draft's problem: a placeholder dropped or invented (when the figures were
        masked), then the checks on the draft with its figures restored."""
        if masked is not None and raw.strip() and NO_ANSWER not in raw:
            problem = masked.problem(raw)
            if problem:
                return problem
        kept = masked is not None
        return self.checks.verdict(
            draft, lang, allowed, facts=facts, figures_kept=kept, places=places
        )

    @staticmethod
    def _clean(draft: str, lang: str, facts: bool) -> str:
        if not facts:
            return draft
        lines = draft.strip().splitlines()
        # "Here is the translation:" and the like, before the translation itself
        if (
            len(lines) > 1
            and lines[0].rstrip().endswith((":", "："))
            and not any(c.isdigit() for c in lines[0])
        ):
            draft = "\n".join(lines[1:]).strip()
        return strip_verdict(draft, lang)

    def _call(self, messages: list[Message], deadline: float) -> ChatStream:
        return ChatStream(self._tokens(messages, deadline))

    def _tokens(self, messages: list[Message], deadline: float) -> Generator[str, None, Usage]:
        """The model's tokens, produced in a worker thread so that a stalled model cannot
        block past the time budget; returns the call's usage."""
        q: queue.Queue[str | Usage | BaseException] = queue.Queue()
        cancel = threading.Event()
        threading.Thread(
            target=self._work, args=(messages, q, cancel), daemon=True, name="kefu-llm"
        ).start()
        tail = ""
        pieces = 0
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Timeout()
                try:
                    item = q.get(timeout=remaining)
                except queue.Empty as exc:
                    raise _Timeout() from exc
                if isinstance(item, str):
                    tail = (tail + item)[-_LOOP_WINDOW:]
                    pieces += 1
                    if pieces % 8 == 0 and looping(tail):
                        # a small model writing a language it barely knows loops ("na kuwa na
                        # kubadilisha na kuwa na kubadilisha …") until max_tokens: stop now
                        raise ModelUnavailable("the model repeats itself")
                    yield item
                elif isinstance(item, Usage):
                    return item
                elif isinstance(item, KefuError):
                    raise item
                else:
                    raise KefuError(f"LLM failed: {item}") from item
        finally:
            cancel.set()

    def _work(
        self,
        messages: list[Message],
        q: queue.Queue[str | Usage | BaseException],
        cancel: threading.Event,
    ) -> None:
        stream: ChatStream | None = None
        try:
            stream = self.llm.stream(
                messages,
                max_tokens=self.llm_settings.max_tokens,
                temperature=self.llm_settings.temperature,
            )
            for piece in stream:
                if cancel.is_set():
                    break
                q.put(piece)
            q.put(stream.usage or Usage())
        except Exception as exc:  # handed to the caller's thread
            q.put(exc)
        finally:
            if stream is not None:
                stream.close()
