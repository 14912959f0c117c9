"""Small talk: greetings, thanks, goodbyes, "are you a bot?", "how are you?" in 18 languages.

Such a turn gets a short friendly frame in the shopper's language (`reply`), with no model
call, never a handoff, a "don't know" or a failure count. The decision errs towards "not small
talk": a message counts only when it is short, has no digits (an order number, a date), no
request word ("thanks, but where is my order?", "hi, my parcel is late") and the kNN over
labelled examples (rag/guardrails/data/smalltalk.yaml) names a small-talk class with a clear
lead over the "none" class of short real requests. Everything else goes on to be answered.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from rag.guardrails.knn import DEFAULT_MODE, Example, KnnScorer, Mode, VectorLike, Vote, labelled
from rag.ports import Embedder
from rag.textutil import fold

KINDS = ("greeting", "thanks", "goodbye", "bot_question", "how_are_you")
NONE = "none"
# languages whose request words match anywhere in the text: no spaces between words, or words
# that take their endings glued on (Korean)
_SUBSTRING_LANGS = {"zh", "ja", "ko", "th", "my"}
# what may stand before or after a whole word; \b does not do for scripts with combining marks
# (Devanagari, Arabic, Thai vowels are not "word" characters to re)
_EDGE = r"[\s.,!?;:\"'()\[\]{}¡¿…~/\-،؟、，。！？「」『』]"
_URL_OR_EMAIL = re.compile(r"https?://|www\.|\S@\S")


@dataclass(frozen=True)
class SmallTalk:
    """The verdict on one message. `kind` is a small-talk class or None (not small talk);
    `reason` says why: "small_talk", or what ruled it out (empty, long, digits, link,
    request_word, knn_none, unsure)."""

    kind: str | None
    reason: str
    vote: Vote | None = None

    @property
    def is_small_talk(self) -> bool:
        return self.kind is not None


@cache
def _data() -> dict[str, Any]:
    raw = (files("rag.guardrails") / "data" / "smalltalk.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(raw)
    return data


def examples() -> list[Example]:
    """Every labelled example; every fifth of a language's list is marked held out."""
    by_label = _data()["examples"].items()
    return [e for label, by_lang in by_label for e in labelled(str(label), by_lang, every=5)]


@cache
def _request_re() -> re.Pattern[str]:
    parts: list[str] = []
    for lang, words in _data()["request_words"].items():
        for word in words:
            w = fold(str(word))
            stem = w.endswith("*")
            body = re.escape(w.rstrip("*"))
            if lang in _SUBSTRING_LANGS:
                parts.append(body)
            else:
                parts.append(f"(?:^|(?<={_EDGE})){body}" + ("" if stem else f"(?={_EDGE}|$)"))
    return re.compile("|".join(parts))


def request_word(text: str) -> str | None:
    """The first word that makes a short message a request ("where", "order", "退款"), or None."""
    m = _request_re().search(fold(text))
    return m.group(0) if m else None


def reply(kind: str, lang: str) -> str:
    """The frame kefu sends for a small-talk class, in the shopper's language (English when the
    language has none)."""
    replies: dict[str, dict[str, str]] = _data()["replies"]
    by_lang = replies[kind]
    return by_lang.get(lang) or by_lang["en"]


def _visible_length(text: str) -> int:
    # emoji, symbols and punctuation do not make a message longer in the sense that matters
    return sum(1 for c in text if unicodedata.category(c)[0] in "LMN" or c == " ")


class SmallTalkClassifier:
    """Decides whether a message is small talk (see the module docstring). The examples are
    embedded once per embedder; pass the turn's message vector to `classify` when the turn has
    one (embedded in the classifier's `mode`, shared with the other classifiers)."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        cache_dir: Path | None = None,
        training: Sequence[Example] | None = None,
        mode: Mode = DEFAULT_MODE,
        k: int = 7,
        min_share: float = 0.6,
        min_margin: float = 0.3,
        min_similarity: float = 0.0,
        max_chars: int = 60,
        max_words: int = 10,
    ) -> None:
        chosen = list(training) if training is not None else examples()
        self.knn = KnnScorer(
            embedder,
            [(e.label, e.text) for e in chosen],
            k=k,
            cache_dir=cache_dir,
            namespace="smalltalk",
            mode=mode,
        )
        self.min_share = min_share
        self.min_margin = min_margin
        self.min_similarity = min_similarity
        self.max_chars = max_chars
        self.max_words = max_words

    def screen(self, text: str) -> str | None:
        """Why the text cannot be small talk without asking the kNN, or None. Cheap: a turn
        ruled out here needs no vector."""
        t = " ".join(text.split())
        if not t:
            return "empty"
        if _visible_length(t) > self.max_chars or len(t.split()) > self.max_words:
            return "long"
        if any(c.isdigit() for c in t):
            return "digits"
        if _URL_OR_EMAIL.search(t):
            return "link"
        if request_word(t) is not None:
            return "request_word"
        return None

    def classify(self, text: str, *, vector: VectorLike | None = None) -> SmallTalk:
        """The verdict on a message; embeds it only when the cheap checks pass and no vector
        was given."""
        ruled_out = self.screen(text)
        if ruled_out is not None:
            return SmallTalk(None, ruled_out)
        vote = self.knn.vote(self.knn.embed(text) if vector is None else vector)
        if vote.label == NONE:
            return SmallTalk(None, "knn_none", vote)
        sure = (
            vote.share >= self.min_share
            and vote.margin >= self.min_margin
            and vote.similarity >= self.min_similarity
            and vote.shares.get(NONE, 0.0) < 0.5 * vote.share
        )
        if not sure:
            return SmallTalk(None, "unsure", vote)
        return SmallTalk(vote.label, "small_talk", vote)
