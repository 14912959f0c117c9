"""PII redaction: e-mails, phone numbers, payment cards, IBANs and street addresses.

Text is redacted before it reaches a hosted LLM and before it is logged. Redaction is
reversible only inside the process: placeholders map back to the originals for the reply the
shopper sees, and the map is never persisted or logged.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import phonenumbers

# an e-mail address; also how the order assistant reads one as proof of ownership
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# house number + street word, or street word + house number, in a few major languages
_STREET_WORDS = (
    r"street|st\.|avenue|ave\.|road|rd\.|lane|boulevard|blvd|drive|dr\.|way|"
    r"calle|avenida|rua|rue|straße|strasse|str\.|weg|platz|via|viale|ulica|улица|ул\."
)
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[a-zA-Z]?\s+(?:[\w.'-]+\s+){{0,4}}(?:{_STREET_WORDS})\b"
    rf"|\b(?:{_STREET_WORDS})\s+(?:[\w.'-]+\s+){{0,4}}\d{{1,5}}[a-zA-Z]?\b",
    re.IGNORECASE | re.UNICODE,
)
_CN_ADDRESS = re.compile(r"[\u4e00-\u9fff]{2,}(?:路|街|道|巷)\d+号")
_PHONE_REGIONS = (None, "US", "GB", "DE", "FR", "ES", "MX", "BR", "CN", "JP", "IN", "AU")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(raw: str) -> bool:
    s = raw.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


@dataclass
class Redaction:
    text: str
    mapping: dict[str, str] = field(default_factory=dict)  # placeholder -> original

    def restore(self, text: str) -> str:
        for placeholder, original in self.mapping.items():
            text = text.replace(placeholder, original)
        return text

    @property
    def kinds(self) -> list[str]:
        return sorted({p.strip("[]").rsplit("_", 1)[0] for p in self.mapping})


def _spans(text: str) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for m in EMAIL.finditer(text):
        spans.append((m.start(), m.end(), "EMAIL"))
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            spans.append((m.start(), m.end(), "CARD"))
    for m in _IBAN.finditer(text):
        if iban_ok(m.group(0)):
            spans.append((m.start(), m.end(), "IBAN"))
    for region in _PHONE_REGIONS:
        for pm in phonenumbers.PhoneNumberMatcher(text, region or "US", leniency=1):
            if region is None and not pm.raw_string.strip().startswith("+"):
                continue
            spans.append((pm.start, pm.end, "PHONE"))
    for m in _ADDRESS.finditer(text):
        spans.append((m.start(), m.end(), "ADDRESS"))
    for m in _CN_ADDRESS.finditer(text):
        spans.append((m.start(), m.end(), "ADDRESS"))
    # keep the longest of overlapping spans
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[tuple[int, int, str]] = []
    for s in spans:
        if out and s[0] < out[-1][1]:
            if s[1] - s[0] > out[-1][1] - out[-1][0] and s[0] == out[-1][0]:
                out[-1] = s
            continue
        out.append(s)
    return out


def redact(text: str, *, keep: tuple[str, ...] = ()) -> Redaction:
    """Replace PII with numbered placeholders ([EMAIL_1] …); `keep` lists values to leave
    (e.g. an order number the answer needs)."""
    spans = [s for s in _spans(text) if text[s[0] : s[1]] not in keep]
    counters: dict[str, int] = {}
    seen: dict[str, str] = {}
    parts: list[str] = []
    last = 0
    for start, end, kind in spans:
        original = text[start:end]
        if original not in seen:
            counters[kind] = counters.get(kind, 0) + 1
            seen[original] = f"[{kind}_{counters[kind]}]"
        parts.append(text[last:start])
        parts.append(seen[original])
        last = end
    parts.append(text[last:])
    return Redaction(text="".join(parts), mapping={v: k for k, v in seen.items()})


class RedactingFilter(logging.Filter):
    """A logging filter that redacts PII from every record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        red = redact(message)
        if red.mapping:
            record.msg = red.text
            record.args = None
        return True


def install_log_redaction() -> None:
    """Redact PII in everything logged through the root logger's handlers."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
