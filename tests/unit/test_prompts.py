"""Every prompt file renders with its variables, and a missing variable is an error."""

from __future__ import annotations

import jinja2
import pytest

from rag.answer.prompts import available, load_prompt

VARIABLES = {
    "answer": {
        "system": {},
        "user": {
            "sources": [{"title": "Returns", "text": "30 days"}],
            "facts": ["VIP customer"],
            "question": "How long?",
            "language_name": "Spanish",
        },
        "strict_suffix": {"problem": "numbers", "language_name": "Spanish"},
        "translate_system": {},
        "translate_user": {"sources": [{"text": "30 days"}], "language_name": "Spanish"},
        "translate_strict": {"problem": "numbers", "language_name": "Spanish"},
    },
}


@pytest.mark.parametrize("task", sorted(VARIABLES))
def test_every_version_renders(task: str) -> None:
    assert available(task)
    for v in available(task):
        p = load_prompt(task, v)
        assert set(p.parts) == set(VARIABLES[task])
        for part, variables in VARIABLES[task].items():
            assert p.render(part, **variables)


def test_missing_variable_fails() -> None:
    p = load_prompt("answer")
    with pytest.raises(jinja2.UndefinedError):
        p.render("user", sources=[], facts=[], question="x")


def test_answer_prompt_keeps_stable_rules_first() -> None:
    p = load_prompt("answer")
    assert "{{" not in p.parts["system"]  # nothing variable in the cached prefix
    assert p.id == f"answer@{p.version}"
