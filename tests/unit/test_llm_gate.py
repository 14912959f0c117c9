"""The model gate: how many requests use the model at once, and what the rest get."""

from __future__ import annotations

import threading
import time

import pytest

from rag.adapters.llm_fake import ScriptedChatModel
from rag.errors import ModelUnavailable
from rag.ports import Usage
from rag.types import Message
from server.llm_gate import GatedChatModel

MESSAGES = [Message("user", "hi")]


def run_concurrently(gate: GatedChatModel, n: int) -> tuple[float, list[BaseException]]:
    errors: list[BaseException] = []

    def one() -> None:
        try:
            "".join(gate.stream(MESSAGES, max_tokens=8, temperature=0))
        except ModelUnavailable as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, errors


@pytest.mark.parametrize(("slots", "serial"), [(1, True), (4, False)])
def test_slots_bound_concurrent_model_use(slots: int, serial: bool) -> None:
    model = ScriptedChatModel(["one two"] * 4, delay_s=0.15)  # 0.3 s per reply
    gate = GatedChatModel(model, max_waiting=8, wait_s=10, slots=slots)
    elapsed, errors = run_concurrently(gate, 4)
    assert errors == []
    assert (elapsed >= 1.1) is serial  # four replies one after another take 1.2 s


def test_a_full_queue_gets_model_unavailable() -> None:
    model = ScriptedChatModel(["one two"] * 4, delay_s=0.2)
    gate = GatedChatModel(model, max_waiting=1, wait_s=10, slots=1)
    _, errors = run_concurrently(gate, 4)
    assert len(errors) == 2  # one runs, one waits, two are turned away


def test_each_call_brings_back_its_own_usage() -> None:
    gate = GatedChatModel(
        ScriptedChatModel(["one two three", "four"]), max_waiting=2, wait_s=5, slots=2
    )
    a = gate.stream([Message("user", "a b")], max_tokens=8, temperature=0)
    b = gate.stream([Message("user", "c")], max_tokens=8, temperature=0)
    assert next(a) == "one"
    assert "".join(b) == "four"
    assert a.usage is None  # not read to its end yet
    assert b.usage == Usage(prompt_tokens=1, completion_tokens=1)
    assert "".join(a) == " two three"
    assert a.usage == Usage(prompt_tokens=2, completion_tokens=3)


def test_a_stream_closed_early_gives_its_slot_back() -> None:
    gate = GatedChatModel(ScriptedChatModel(["one two", "three"]), max_waiting=1, wait_s=0.5)
    first = gate.stream(MESSAGES, max_tokens=8, temperature=0)
    assert next(first) == "one"
    first.close()
    assert "".join(gate.stream(MESSAGES, max_tokens=8, temperature=0)) == "three"
