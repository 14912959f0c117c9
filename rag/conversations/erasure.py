"""Finding a shopper's conversations for erasure: by the identifiers they gave or wrote.

Pure functions over text, shared by every conversation store so each erases the same rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from rag.guardrails.pii import redact


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def mention_matcher(identifiers: Iterable[str]) -> Callable[[str | None], bool]:
    """A test for "does this text mention any of these identifiers (an e-mail, a customer id,
    a phone number written any way)?"."""
    idents = [i for i in identifiers if i]
    texts = [i.casefold() for i in idents if len(i) >= 4]
    phones = [d for i in idents if len(d := digits(i)) >= 7 and "@" not in i]
    # phone numbers are written in many ways: compare the digits, national part included
    nationals = {p[-9:] for p in phones}

    def mentions(text: str | None) -> bool:
        if not text:
            return False
        low = text.casefold()
        if any(t in low for t in texts):
            return True
        if nationals:
            d = digits(text)
            return any(n in d for n in nationals)
        return False

    return mentions


def written_identifiers(texts: Iterable[str]) -> set[str]:
    """E-mails and phone numbers written in these (shopper) texts."""
    found: set[str] = set()
    for text in texts:
        for placeholder, value in redact(text).mapping.items():
            if placeholder.startswith(("[EMAIL", "[PHONE")):
                found.add(value)
    return found
