"""Country names: Babel's territory names in every language kefu speaks (and a few more), plus
the one table of other names and codes people use for a country.

Shoppers name their country in a message ("envío a México"), sellers in a shipping policy
("USA: 5-8 business days"), and storefronts and documents tag markets with codes ("UK" for
GB). All three readings take their aliases from here.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from babel import Locale, UnknownLocaleError

# English names for a country other than Babel's ("United States"), as shoppers and shipping
# policies write them.
NAME_ALIASES: dict[str, tuple[str, ...]] = {
    "US": ("USA", "U.S."),
    "GB": ("UK", "Britain"),
    "AE": ("UAE",),
    "KR": ("Korea",),
}
# Codes in use that are not the ISO 3166 code: the UK's own "UK", the EU's "EL" for Greece.
CODE_ALIASES: dict[str, str] = {"UK": "GB", "EL": "GR"}

# Locales whose country names are recognised in messages besides the languages kefu speaks:
# neighbours whose shoppers often write in their own language.
EXTRA_NAME_LOCALES = ("sv", "da", "no", "fi", "cs", "el", "ro", "hu")
_MIN_LEN = 4


def country_name_in(code: str, lang: str) -> str:
    """'MX' in 'es' -> 'México'."""
    try:
        return str(Locale.parse(lang.replace("-", "_")).territories.get(code.upper(), code))
    except (ValueError, UnknownLocaleError):
        return code


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _cjk(text: str) -> bool:
    return any(ord(c) > 0x2E80 for c in text)


@lru_cache(maxsize=1)
def _country_names() -> list[tuple[str, str]]:
    from rag.lang.frames import languages  # here: frames re-exports this module's functions

    names: dict[str, str] = {}
    for code in (*languages(), *EXTRA_NAME_LOCALES):
        try:
            loc = Locale.parse(code)
        except (ValueError, UnknownLocaleError):
            continue
        for terr, name in loc.territories.items():
            if len(terr) == 2 and terr.isalpha() and len(name) >= 2:
                n = _norm(name)
                if len(n) >= _MIN_LEN or _cjk(n):
                    names.setdefault(n, terr)
    for terr, aliases in NAME_ALIASES.items():
        for alias in aliases:
            names[_norm(alias)] = terr
    # longest first, so "North Korea" is taken before the "Korea" inside it
    return sorted(names.items(), key=lambda kv: -len(kv[0]))


def country_mentioned(text: str) -> str | None:
    """The ISO code of the last country named in a message, in any of ~30 languages. A name
    inside a longer one counts as the longer one ("Papua New Guinea" is not Guinea)."""
    t = _norm(text)
    best: tuple[int, str] | None = None
    for name, code in _country_names():
        if name not in t:  # a plain substring test first: the regex only runs on candidates
            continue
        pattern = re.escape(name) if _cjk(name) else rf"(?<!\w){re.escape(name)}(?!\w)"
        spans = [m.span() for m in re.finditer(pattern, t)]
        for start, end in spans:
            if best is None or start > best[0]:
                best = (start, code)
            t = t[:start] + " " * (end - start) + t[end:]  # taken: not a shorter name's
    return best[1] if best else None
