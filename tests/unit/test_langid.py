"""Language identification on the short messages shoppers send (CLD2 and the bundled fastText
model, no network)."""

from __future__ import annotations

import pytest

from rag.adapters.langid import CldFastTextDetector

detector = CldFastTextDetector()


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("墨西哥能在OXXO付现金吗？要几天之内付", "zh"),  # Han only: Chinese, not Japanese
        ("陶瓷茶具是怎么包装的？怕路上摔碎", "zh"),  # read as Esperanto by the statistical models
        ("寄到日本大概要几天？运费多少", "zh"),
        ("メキシコにはOXXOで現金払いできますか？", "ja"),  # kana: Japanese
        ("멕시코에서 OXXO 현금 결제 되나요?", "ko"),
        ("¿Puedo pagar en efectivo en OXXO?", "es"),
    ],
)
def test_scripts_and_languages(text: str, lang: str) -> None:
    assert detector.detect(text)[0] == lang


def test_a_japanese_conversation_keeps_its_language_on_a_kanji_only_message() -> None:
    assert detector.detect("東京都渋谷区", hint="ja")[0] == "ja"
