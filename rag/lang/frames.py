"""Localised reply frames, language names and country mentions, from data files and Babel."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib.resources import files
from typing import Any

import yaml
from babel import Locale, UnknownLocaleError

FALLBACK = "en"


FRAME_FILES = ("frames.yaml", "order_frames.yaml", "order_words.yaml")


@lru_cache(maxsize=1)
def _frames() -> dict[str, Any]:
    """All frame files merged: per language (and per phrase list) their keys are combined."""
    merged: dict[str, Any] = {}
    for name in FRAME_FILES:
        data = yaml.safe_load((files("rag.lang") / "data" / name).read_text(encoding="utf-8"))
        assert isinstance(data, dict)
        for key, table in data.items():
            merged.setdefault(key, {}).update(table)
    return merged


def languages() -> list[str]:
    return sorted(k for k in _frames() if not k.startswith("_"))


def frame(lang: str, key: str, **values: str) -> str:
    """A localised message (English when the language has no frames yet)."""
    table = _frames().get(lang) or _frames()[FALLBACK]
    text = str(table.get(key) or _frames()[FALLBACK][key])
    return text.format(**values) if values else text


def phrases(kind: str) -> dict[str, list[str]]:
    """Phrase lists by language, e.g. kind='human_request'."""
    data = _frames().get(f"_{kind}_phrases", {})
    return {k: [str(p) for p in v] for k, v in data.items()}


@lru_cache(maxsize=256)
def language_name(code: str) -> str:
    """'es' -> 'Spanish (español)': the English name helps the model, the native one too."""
    try:
        loc = Locale.parse(code.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return code
    english = loc.get_display_name("en") or code
    native = loc.get_display_name(loc) or ""
    return f"{english} ({native})" if native and native != english else english


@lru_cache(maxsize=256)
def language_name_in(code: str, lang: str) -> str:
    """'es' in 'zh' -> '西班牙语': language names for people reading `lang`."""
    try:
        return str(Locale.parse(code.replace("-", "_")).get_display_name(lang) or code)
    except (ValueError, UnknownLocaleError):
        return code


def country_name_in(code: str, lang: str) -> str:
    """'MX' in 'es' -> 'México'."""
    try:
        return str(Locale.parse(lang.replace("-", "_")).territories.get(code.upper(), code))
    except (ValueError, UnknownLocaleError):
        return code


# Locales whose country names we recognise in messages.
_NAME_LOCALES = [
    "en",
    "zh",
    "es",
    "fr",
    "de",
    "it",
    "pt",
    "ru",
    "ar",
    "tr",
    "ja",
    "ko",
    "vi",
    "id",
    "th",
    "hi",
    "sw",
    "my",
    "nl",
    "pl",
    "he",
    "ms",
    "fil",
    "uk",
    "sv",
    "da",
    "no",
    "fi",
    "cs",
    "el",
    "ro",
    "hu",
]
_MIN_LEN = 4


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=1)
def _country_names() -> list[tuple[str, str]]:
    names: dict[str, str] = {}
    for code in _NAME_LOCALES:
        try:
            loc = Locale.parse(code)
        except (ValueError, UnknownLocaleError):
            continue
        for terr, name in loc.territories.items():
            if len(terr) == 2 and terr.isalpha() and len(name) >= 2:
                n = _norm(name)
                if len(n) >= _MIN_LEN or any(ord(c) > 0x2E80 for c in n):
                    names.setdefault(n, terr)
    for alias, terr in {"usa": "US", "u.s.": "US", "uk": "GB", "britain": "GB"}.items():
        names[alias] = terr
    # longest first, so "United States" wins over "States"
    return sorted(names.items(), key=lambda kv: -len(kv[0]))


def country_mentioned(text: str) -> str | None:
    """The ISO code of the last country named in a message, in any of ~30 languages."""
    t = _norm(text)
    best: tuple[int, str] | None = None
    for name, code in _country_names():
        if name not in t:  # a plain substring test first: the regex only runs on candidates
            continue
        cjk = any(ord(c) > 0x2E80 for c in name)
        pattern = re.escape(name) if cjk else rf"(?<!\w){re.escape(name)}(?!\w)"
        for m in re.finditer(pattern, t):
            if best is None or m.start() > best[0]:
                best = (m.start(), code)
    return best[1] if best else None
