"""Numbers kept out of the model's hands while it translates facts.

A small model translating "Standard time: 10–18 business days; Standard fee: US$9.99" into
Japanese or Swahili often rewrites the figures: a range cut to one end, 9.99 written 999, a
full-width digit dropped. Each quantity of the facts (a number, a range, an amount with its
currency sign) is replaced by a placeholder `{0}`, `{1}`, … before the model sees the text, as
software strings are handed to translators; the model moves the placeholders where its language
puts them, and they are replaced by the facts' own figures afterwards, while the reply streams.
A translation that drops or invents a placeholder fails its check like one that drops a number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# a number or a range, with a currency sign or code before it and a percent sign after it;
# never a digit inside a Latin word ("4PX", "Type C2"), which is left for the model to copy
_NUMBER = r"\d+(?:[.,\u00a0]\d+)*"
_QUANTITY = re.compile(
    rf"(?<![A-Za-z0-9$€£¥₩₹₫฿])(?:(?:[A-Z]{{1,3}}\s?)?[$€£¥₩₹₫฿]\s?)?{_NUMBER}"
    rf"(?:\s?[–—~〜～-]\s?{_NUMBER})?%?(?![A-Za-z0-9])"
)
_PLACEHOLDER = re.compile(r"\{(\d{1,3})\}")


@dataclass(frozen=True)
class Masked:
    """The facts with their quantities replaced, and the figure behind each placeholder."""

    texts: tuple[str, ...]
    figures: tuple[str, ...]  # figures[i] is what `{i}` stands for

    def restore(self, text: str) -> str:
        """The text with every known placeholder replaced by its figure."""

        def figure(m: re.Match[str]) -> str:
            i = int(m.group(1))
            return self.figures[i] if i < len(self.figures) else m.group(0)

        return _PLACEHOLDER.sub(figure, text)

    def problem(self, text: str) -> str | None:
        """Why a translation does not keep the placeholders: one dropped, or one invented."""
        seen = {int(i) for i in _PLACEHOLDER.findall(text)}
        missing = [i for i in range(len(self.figures)) if i not in seen]
        unknown = sorted(i for i in seen if i >= len(self.figures))
        if missing:
            return "placeholders dropped: " + ", ".join(f"{{{i}}}" for i in missing)
        if unknown:
            return "placeholders invented: " + ", ".join(f"{{{i}}}" for i in unknown)
        return None


def mask(texts: Sequence[str]) -> Masked:
    """Replace every quantity of `texts` by a placeholder; one figure, one placeholder."""
    figures: list[str] = []
    index: dict[str, int] = {}

    def placeholder(m: re.Match[str]) -> str:
        figure = m.group(0)
        if figure not in index:
            index[figure] = len(figures)
            figures.append(figure)
        return f"{{{index[figure]}}}"

    return Masked(tuple(_QUANTITY.sub(placeholder, t) for t in texts), tuple(figures))


class Unmasker:
    """Restores placeholders in a stream of pieces: text that may be the start of a
    placeholder ("{", "{1") is held back until it is complete or cannot be one."""

    def __init__(self, masked: Masked) -> None:
        self.masked = masked
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        cut = text.rfind("{")
        if cut != -1 and re.fullmatch(r"\{\d{0,3}", text[cut:]):
            self._held, text = text[cut:], text[:cut]
        else:
            self._held = ""
        return self.masked.restore(text)

    def flush(self) -> str:
        rest, self._held = self._held, ""
        return self.masked.restore(rest)
