"""The model gate: how many requests use the model at once, and what the rest get."""

from __future__ import annotations

import threading
import time

import pytest

from rag.adapters.llm_fake import ScriptedChatModel
from rag.errors import ModelUnavailable
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
