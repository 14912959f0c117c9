"""Right or honestly absent in the shopper's language, with the real embedder on the sample
store: the chosen facts are translated by the model (a translation-only task, checked claim by
claim); a translation that gives another row's figures is retried once and then replaced by an
honest "I cannot answer" in that language, never an English quote; small talk gets a frame in
14 languages, no model call, no handoff."""

from __future__ import annotations

import re

import pytest

from rag.adapters.llm_fake import ScriptedChatModel
from rag.answer.draft import Draft
from rag.answer.pipeline import AnswerPipeline, AskRequest
from rag.answer.router import Route
from rag.container import Container
from rag.guardrails.smalltalk import reply
from rag.lang.frames import frame
from tests.unit.answer_kit import drafted, pipeline, understood

WRONG_ROW = "Usafirishaji wa kawaida kwenda Mexico huchukua siku 4–7 na unagharimu $34.99."
QUESTION_SW = "Usafirishaji wa kawaida kwenda Mexico unachukua siku ngapi?"


def knowledge(c: Container, model: ScriptedChatModel, message: str, session: str) -> Draft:
    p = pipeline(c, model)
    turn = understood(p, message, session, country="MX")
    assert turn.language == "sw"
    assert p.router.route(turn) is Route.KNOWLEDGE
    return drafted(p.stages[Route.KNOWLEDGE].draft(turn))[1]


def _answer_facts(c: Container) -> list[str]:
    """The facts kefu restates for the Swahili question (read off a first turn)."""
    model = ScriptedChatModel(["-"])
    draft = knowledge(c, model, QUESTION_SW, "s-sw-probe")
    assert len(model.calls) >= 1
    assert model.calls[0][-1].content.startswith("Translate into Swahili")
    return [f["text"] for f in draft.facts]


def test_the_facts_are_restated_in_swahili(sample_container: Container) -> None:
    facts = _answer_facts(sample_container)
    assert any("10–18" in f or "10–20" in f for f in facts)  # Mexico's standard time
    assert not any("4–7" in f for f in facts)  # never the express row: standard was asked
    # the model is handed the facts with placeholders for their figures, and keeps them
    asked = ScriptedChatModel(["-"])
    knowledge(sample_container, asked, QUESTION_SW, "s-sw-ask")
    sent = asked.calls[0][-1].content
    holders = sorted(set(re.findall(r"\{\d+\}", sent)))
    assert holders
    assert "10–18" not in sent
    assert "10–20" not in sent
    translation = "Usafirishaji wa kawaida kwenda Mexico: " + ", ".join(holders) + "."
    model = ScriptedChatModel([translation])
    draft = knowledge(sample_container, model, QUESTION_SW, "s-sw-ok")
    assert draft.mode == "llm"
    assert len(model.calls) == 1
    # the shopper reads the facts' own figures where the placeholders were
    assert "{" not in draft.text
    assert "10–18" in draft.text or "10–20" in draft.text
    assert draft.text.startswith("Usafirishaji wa kawaida kwenda Mexico: ")


def test_a_wrong_row_translation_is_caught_and_never_shipped(
    sample_container: Container,
) -> None:
    # a translation that keeps the placeholders but adds the express row's figures
    asked = ScriptedChatModel(["-"])
    knowledge(sample_container, asked, QUESTION_SW, "s-sw-ask2")
    holders = sorted(set(re.findall(r"\{\d+\}", asked.calls[0][-1].content)))
    wrong = f"{WRONG_ROW} ({', '.join(holders)})"
    model = ScriptedChatModel([wrong, wrong])
    draft = knowledge(sample_container, model, QUESTION_SW, "s-sw-bad")
    assert len(model.calls) == 2  # the translation and its one retry
    assert "4–7" in model.calls[1][-1].content  # the retry names the problem
    assert draft.mode == "dont_know"
    assert draft.text == f"{frame('sw', 'dont_know')} {frame('sw', 'offer_human')}"
    assert "4–7" not in draft.text


def test_a_translation_that_writes_its_own_figures_is_caught(
    sample_container: Container,
) -> None:
    model = ScriptedChatModel([WRONG_ROW, WRONG_ROW])  # the placeholders replaced by a guess
    draft = knowledge(sample_container, model, QUESTION_SW, "s-sw-guess")
    assert len(model.calls) == 2
    assert "placeholders dropped" in model.calls[1][-1].content
    assert draft.mode == "dont_know"
    assert "4–7" not in draft.text


def test_a_how_long_question_is_answered_by_a_fact_that_states_a_duration(
    sample_container: Container,
) -> None:
    # the Australian customs page names Australia too; the shipping table's row says how long
    p = pipeline(sample_container, None)
    turn = understood(p, "How long does shipping to Australia take?", "s-au", country="AU")
    draft = drafted(p.stages[Route.KNOWLEDGE].draft(turn))[1]
    assert draft.mode == "facts"
    assert draft.facts[0]["doc_id"] == "docs/shipping/shipping-zones.md"
    assert "8–14" in draft.text  # zone 4's standard time
    assert "Standard fee" not in draft.text  # the row is cut to what was asked


THANKS = {
    "en": "thanks, that's all I needed!",
    "es": "¡muchas gracias!",
    "fr": "merci beaucoup !",
    "de": "vielen Dank!",
    "it": "grazie mille!",
    "pt": "muito obrigado!",
    "ru": "большое спасибо!",
    "ja": "ありがとうございました！",
    "zh": "谢谢你！",
    "ko": "감사합니다!",
    "vi": "Cảm ơn shop nhiều nha ❤️",
    "th": "ขอบคุณมากค่ะ",
    "tr": "çok teşekkürler!",
    "ar": "شكرا جزيلا!",
}


@pytest.fixture(scope="module")
def chat(sample_container: Container) -> AnswerPipeline:
    return pipeline(sample_container, ScriptedChatModel([]), small_talk=True)


@pytest.mark.parametrize("lang", sorted(THANKS))
def test_thanks_gets_a_friendly_frame_and_never_a_handoff(chat: AnswerPipeline, lang: str) -> None:
    model = chat.llm
    assert isinstance(model, ScriptedChatModel)
    r = chat.answer(AskRequest(message=THANKS[lang], session_id=f"s-thanks-{lang}"))
    assert r.mode == "small_talk", (lang, r.mode, r.reply)
    assert r.reply == reply("thanks", r.language)
    assert r.language == lang
    assert not r.escalation.get("escalate")
    assert model.calls == []  # no model call
