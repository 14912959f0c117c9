"""What a faithful translator writes, as a responder for the OpenAI-protocol double.

Over compiled facts kefu asks the model only to translate the chosen facts (a user message
"Translate into French (français):" and the facts, one a line; the shopper's question is not
sent). A faithful translation keeps every figure of the facts (or the placeholders kefu puts
in their place); this one writes them all in a sentence of the requested language, so the
draft passes kefu's checks the way a good model's would."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rag.textutil import numbers_in

INTROS = {
    "French": "Voici les informations demandées, avec tous les chiffres de notre politique :",
    "Spanish": "Estos son los datos que nos pidió, con todas las cifras de nuestra política:",
    "German": "Hier sind die gewünschten Angaben mit allen Zahlen aus unseren Richtlinien:",
    "Arabic": "إليك المعلومات التي طلبتها مع جميع الأرقام الواردة في سياستنا:",
    "English": "Here is the information you asked for, with every figure of our policy:",
}


def translation_request(messages: list[dict[str, Any]]) -> bool:
    """Whether the request is kefu's translation of facts."""
    return str(messages[-1]["content"]).startswith("Translate into ")


def target_language(messages: list[dict[str, Any]]) -> str:
    """The English name of the language asked for ("French" in "Translate into French …")."""
    m = re.match(r"Translate into (\w+)", str(messages[-1]["content"]))
    assert m, messages[-1]["content"]
    return m.group(1)


def facts_of(messages: list[dict[str, Any]]) -> list[str]:
    """The facts a translation request carries (one per line after its instruction)."""
    body = str(messages[-1]["content"]).split("\n\n", 1)[-1]
    return [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("Your previous")]


def faithful(messages: list[dict[str, Any]]) -> str:
    """Every figure of the facts, in the requested language: the placeholders that stand for
    them ({0}, {1}, … when kefu masks the figures), else the figures themselves."""
    facts = facts_of(messages)
    intro = INTROS[target_language(messages)]
    holders = sorted(set(re.findall(r"\{\d+\}", "\n".join(facts))), key=lambda h: int(h[1:-1]))
    if holders:
        return f"{intro} {', '.join(holders)}."
    figures = sorted(set().union(*(numbers_in(f) for f in facts)), key=float)
    return f"{intro} {', '.join(figures)}." if figures else intro.rstrip(" :") + "."


def shown(template: str, text: str, *, whole: bool = False) -> bool:
    """Whether `text` is what the shopper reads of the translator's `template`: its words as
    written, each placeholder replaced by a figure (kefu restores them after the model)."""
    parts = re.split(r"\{\d+\}", template)
    pattern = "(.+?)".join(re.escape(p) for p in parts)
    return (re.fullmatch if whole else re.match)(pattern, text) is not None


def queued(replies: list[Any], *, empty: str = "") -> Callable[[list[dict[str, Any]]], str]:
    """A responder that answers with the queued replies in order: a string, or a function of
    the request's messages (`faithful`, say); `empty` once the queue is spent."""

    def respond(messages: list[dict[str, Any]]) -> str:
        if not replies:
            return empty
        r = replies.pop(0)
        return str(r(messages) if callable(r) else r)

    return respond
