"""Right or honestly absent in the shopper's language, with the real embedder on the sample
store: a rejected draft is replaced by the chosen facts translated (a translation-only task,
checked like a draft) or, when the translation changes a figure, by an honest "I cannot answer"
in that language, never an English quote; small talk gets a frame in 12 languages, no model
call, no handoff."""

from __future__ import annotations

import pytest

from rag.adapters.llm_fake import ScriptedChatModel
from rag.answer.draft import Draft, Drafting, Event
from rag.answer.pipeline import AnswerPipeline, AskRequest
from rag.answer.router import Route
from rag.container import Container
from rag.guardrails.smalltalk import SmallTalkClassifier, reply
from rag.lang.frames import frame
from tests.unit.answer_kit import understood

WRONG_ROW = "Usafirishaji wa kawaida kwenda Mexico huchukua siku 4–7 na unagharimu $34.99."
QUESTION_SW = "Usafirishaji wa kawaida kwenda Mexico unachukua siku ngapi?"


def build(
    c: Container, model: ScriptedChatModel | None, *, small_talk: bool = False
) -> AnswerPipeline:
    return AnswerPipeline(
        retriever=c.retriever,
        detector=c.detector,
        counter=c.tokens,
        conversations=c.conversations,
        llm=model,
        settings=c.settings.answer,
        llm_settings=c.settings.llm,
        small_talk=SmallTalkClassifier(c.embedder) if small_talk else None,
    )


def drafted(drafting: Drafting) -> tuple[list[Event], Draft]:
    events: list[Event] = []
    while True:
        try:
            events.append(next(drafting))
        except StopIteration as end:
            return events, end.value


def knowledge(c: Container, model: ScriptedChatModel, message: str, session: str) -> Draft:
    p = build(c, model)
    turn = understood(p, message, session, country="MX")
    assert turn.language == "sw"
    assert p.router.route(turn) is Route.KNOWLEDGE
    return drafted(p.stages[Route.KNOWLEDGE].draft(turn))[1]


def test_the_fallback_restates_the_facts_in_swahili(sample_container: Container) -> None:
    model = ScriptedChatModel([WRONG_ROW, WRONG_ROW])
    p = build(sample_container, model)
    turn = understood(p, QUESTION_SW, "s-sw-probe", country="MX")
    chosen_context = ""
    try:
        drafted(p.stages[Route.KNOWLEDGE].draft(turn))
    finally:
        chosen_context = model.calls[0][-1].content.split("QUESTION:")[0]
    facts = [ln[2:] for ln in chosen_context.splitlines() if ln.startswith("- ")]
    assert any("10–18" in f for f in facts), chosen_context  # Mexico's standard time chosen
    # a faithful translation of the facts that will be restated: every figure kept
    from rag.textutil import numbers_in

    figures = sorted(set().union(*(numbers_in(f) for f in facts[:2])))
    translation = "Kwa usafirishaji wa kawaida kwenda Mexico: " + ", ".join(figures) + "."
    model = ScriptedChatModel([WRONG_ROW, WRONG_ROW, translation])
    draft = knowledge(sample_container, model, QUESTION_SW, "s-sw-ok")
    assert len(model.calls) == 3
    assert model.calls[2][-1].content.startswith("Translate into Swahili")
    assert draft.mode == "restated"
    assert draft.text.startswith(translation)
    assert "4–7" not in draft.text


def test_a_translation_that_changes_a_figure_is_not_shipped(sample_container: Container) -> None:
    bad = "Usafirishaji wa kawaida kwenda Mexico huchukua siku 4–7 za kazi."
    model = ScriptedChatModel([WRONG_ROW, WRONG_ROW, bad])
    draft = knowledge(sample_container, model, QUESTION_SW, "s-sw-bad")
    assert len(model.calls) == 3
    assert draft.mode == "dont_know"
    assert draft.text == f"{frame('sw', 'dont_know')} {frame('sw', 'offer_human')}"


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
    return build(sample_container, ScriptedChatModel([]), small_talk=True)


@pytest.mark.parametrize("lang", sorted(THANKS))
def test_thanks_gets_a_friendly_frame_and_never_a_handoff(chat: AnswerPipeline, lang: str) -> None:
    model = chat.llm
    assert isinstance(model, ScriptedChatModel)
    r = chat.answer(AskRequest(message=THANKS[lang], session_id=f"s-thanks-{lang}"))
    assert r.mode == "small_talk", (lang, r.mode, r.text)
    assert r.text == reply("thanks", r.language)
    assert r.language == lang
    assert not r.escalation.get("escalate")
    assert model.calls == []  # no model call
