"""The facts' figures are placeholders while the model translates them, and come back as
written: the model cannot cut a range, drop a decimal or move a price to another row."""

from __future__ import annotations

from rag.adapters.llm_fake import ScriptedChatModel
from rag.answer.generation import Generated, Generation
from rag.answer.masking import Unmasker, mask
from rag.answer.prompts import load_prompt
from rag.knowledge.context import Snippet
from rag.settings import LLMSettings

FACTS = [
    "Mexico — Standard time: 10–18 business days; Standard fee: US$9.99; carrier: 4PX",
    "Orders up to €150: VAT 20% is charged at checkout; 送料3〜5営業日",
]


def test_every_figure_becomes_one_placeholder_and_comes_back() -> None:
    m = mask(FACTS)
    assert m.figures == ("10–18", "US$9.99", "€150", "20%", "3〜5")
    assert "10–18" not in m.texts[0]
    assert "4PX" in m.texts[0]  # a digit inside a name is the name's
    translated = "México: estándar {0} días hábiles por {1} (4PX). Pedidos hasta {2}: IVA {3}."
    assert m.restore(translated) == (
        "México: estándar 10–18 días hábiles por US$9.99 (4PX). Pedidos hasta €150: IVA 20%."
    )
    assert m.problem(translated) == "placeholders dropped: {4}"
    assert m.problem(translated + " {4} {7}") == "placeholders invented: {7}"
    assert m.problem(translated + " {4}") is None


def test_placeholders_split_across_streamed_pieces_are_restored() -> None:
    m = mask(FACTS)
    u = Unmasker(m)
    pieces = ["Estándar ", "{", "0", "} días, ", "{1", "}", " y {"]
    out = "".join(u.feed(p) for p in pieces) + u.flush()
    assert out == "Estándar 10–18 días, US$9.99 y {"


class Detector:
    def detect(self, text: str, *, hint: str | None = None) -> tuple[str, float]:
        return ("es", 1.0)


def translate(replies: list[str], *, version: int = 3) -> tuple[Generated, ScriptedChatModel]:
    model = ScriptedChatModel(replies)
    gen = Generation(
        model,
        prompt=load_prompt("answer", version),
        llm_settings=LLMSettings(provider="none"),
        detector=Detector(),  # type: ignore[arg-type]
    )
    snippets = [Snippet(0, "Shipping", FACTS[0], 0.9)]
    steps = gen.write("¿Cuánto tarda el envío a México?", "es", snippets, facts=True)
    try:
        while True:
            next(steps)
    except StopIteration as done:
        result: Generated = done.value
    return result, model


def test_the_model_sees_placeholders_and_the_shopper_the_figures() -> None:
    result, model = translate(["El envío estándar a México tarda {0} días hábiles y cuesta {1}."])
    sent = model.calls[0][-1].content
    assert "{0}" in sent
    assert "10–18" not in sent  # the figures never reach the model
    assert "US$9.99" not in sent
    assert result.problem is None
    assert result.text == "El envío estándar a México tarda 10–18 días hábiles y cuesta US$9.99."


def test_a_translation_that_drops_a_figure_is_retried_then_rejected() -> None:
    result, model = translate(["El envío tarda {0} días.", "El envío tarda 10 días."])
    assert len(model.calls) == 2
    assert "placeholders dropped: {1}" in model.calls[1][-1].content  # the retry says why
    assert result.problem is not None


def test_a_prompt_that_hands_over_figures_as_written_is_not_masked() -> None:
    assert load_prompt("answer", 2).figures == "as_written"
    result, model = translate(
        ["El envío tarda 10–18 días hábiles y cuesta US$9.99 (4PX)."], version=2
    )
    assert "10–18" in model.calls[0][-1].content
    assert result.problem is None
