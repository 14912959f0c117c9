"""Localised reply frames, phrase lists and language names, from data files and Babel.

Country names are in rag/lang/countries.py (re-exported here for the answer pipeline)."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import Any

import yaml
from babel import Locale, UnknownLocaleError

from rag.lang.countries import country_mentioned, country_name_in

__all__ = [
    "country_mentioned",
    "country_name_in",
    "frame",
    "language_name",
    "language_name_in",
    "languages",
    "phrases",
]

FALLBACK = "en"


FRAME_FILES = ("frames.yaml", "order_frames.yaml", "phrases.yaml")


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
