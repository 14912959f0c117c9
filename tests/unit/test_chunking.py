"""Token-aware chunking: budgets hold in every script, headings give context."""

from __future__ import annotations

import pytest

from ingest.chunking import Chunker, sections
from rag.adapters.tokens import TiktokenCounter


@pytest.fixture(scope="module")
def counter() -> TiktokenCounter:
    return TiktokenCounter()


def test_token_counter_works_offline(counter: TiktokenCounter) -> None:
    assert counter.count("hello world") == 2
    assert counter.count("退货政策") > 0


def test_sections_keep_heading_path() -> None:
    text = "# Returns\nintro\n## Fees\nlabel costs $7.95\n## Window\n30 days\n"
    assert sections(text) == [
        ("Returns", "intro"),
        ("Returns > Fees", "label costs $7.95"),
        ("Returns > Window", "30 days"),
    ]


@pytest.mark.parametrize(
    "sentence",
    [
        "普通订单的处理时间为一到两个工作日，含锂电池商品的订单需要单独包装和检查。",  # Chinese
        "ご注文は通常一から二営業日以内に発送され、追跡番号がメールで届きます。",  # Japanese
        "สินค้าจะถูกจัดส่งภายในหนึ่งถึงสองวันทำการหลังจากได้รับการชำระเงิน",  # Thai, no spaces
    ],
)
def test_scripts_without_spaces_are_split_within_budget(
    counter: TiktokenCounter, sentence: str
) -> None:
    chunker = Chunker(counter, chunk_tokens=80, overlap=10)
    text = sentence * 30  # one long paragraph with no spaces and no newlines
    chunks = chunker.split("Policy", text)
    assert len(chunks) > 3
    for c in chunks:
        assert counter.count(c.text) <= 80 + 10
        assert c.text.startswith("Policy\n")
    # nothing is lost: every character of the source appears in some chunk
    joined = "".join(c.text for c in chunks)
    assert set(text) <= set(joined)


def test_short_sections_stay_whole_and_carry_their_heading(counter: TiktokenCounter) -> None:
    chunker = Chunker(counter, chunk_tokens=200, overlap=20)
    chunks = chunker.split("Returns policy", "## Window\nReturn within 30 days.\n## Fees\n$7.95")
    assert [c.text for c in chunks] == [
        "Returns policy — Window\nReturn within 30 days.",
        "Returns policy — Fees\n$7.95",
    ]
    assert [c.position for c in chunks] == [0, 1]
