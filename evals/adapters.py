"""Readers for public intent datasets, as rows kefu's checks can run on.

- Bitext customer support (CSV; `instruction` or `utterance`, `intent`, `category`, and `flags` or
  `tags`): English; `contact_human_agent` and `complaint` rows should be escalated.
- CLINC150 (`data_full.json`: lists of [text, intent] per split; `oos` = out of scope): English.
- xSID (CoNLL files such as `de.valid.conll` with `# text = …` and `# intent = …` lines): the
  language comes from the file name; dialects count as their standard language.

The datasets are read from where they are (their licences differ from kefu's); nothing is copied.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from evals.dataset import EvalError

ESCALATION_INTENTS = frozenset({"contact_human_agent", "complaint"})

# Bitext intents that a shop's policies answer, and the kefu document types that answer them
# (the FAQ answers a bit of everything).
BITEXT_TOPICS: dict[str, tuple[str, ...]] = {
    "delivery_options": ("shipping", "faq"),
    "delivery_period": ("shipping", "faq"),
    "track_order": ("shipping", "faq"),
    "check_refund_policy": ("returns", "faq"),
    "get_refund": ("returns", "faq"),
    "track_refund": ("returns", "faq"),
    "check_payment_methods": ("payment", "faq"),
    "payment_issue": ("payment", "faq"),
}

# Language codes that count as right for a dataset language: a dialect is recognised when its
# standard language is (kefu answers a Bavarian in German), and Latin-script Serbian cannot be
# told from Croatian or Bosnian by its text.
ACCEPTED_LANGUAGES: dict[str, tuple[str, ...]] = {
    "de-ba": ("de",),
    "de-muc": ("de",),
    "de-st": ("de",),
    "gsw": ("gsw", "als", "de"),
    "nap": ("nap", "it"),
    "sr": ("sr", "hr", "bs"),
}


@dataclass(frozen=True)
class AdapterRow:
    id: str
    text: str
    lang: str  # the dataset's language (variety), e.g. "de-ba"
    intent: str
    escalate: bool  # a person should take over
    out_of_scope: bool  # nothing a shop's help pages answer (CLINC150 `oos`)
    topics: tuple[str, ...] = ()  # kefu doc types that answer it; empty when unlabelled
    flags: str = ""

    @property
    def accepted_languages(self) -> tuple[str, ...]:
        return ACCEPTED_LANGUAGES.get(self.lang, (self.lang,))


T = TypeVar("T")


def spread(rows: Sequence[T], limit: int | None) -> list[T]:
    """`limit` rows spread evenly over the set (the files are sorted by intent, so the first N
    rows would all share one intent); deterministic."""
    if limit is None or limit >= len(rows):
        return list(rows)
    return [rows[i * len(rows) // limit] for i in range(max(0, limit))]


def _files(path: Path, pattern: str) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(path.glob(pattern))
        if found:
            return found
        raise EvalError(f"{path} holds no {pattern} files")
    raise EvalError(f"{path} does not exist")


def read_bitext(path: Path, *, limit: int | None = None) -> list[AdapterRow]:
    """Bitext customer-support CSV (a file, or a folder of them)."""
    rows: list[AdapterRow] = []
    n = 0
    for f in _files(path, "*.csv"):
        with f.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or ())
            text_col = "instruction" if "instruction" in cols else "utterance"
            if text_col not in cols or "intent" not in cols:
                raise EvalError(f"{f}: not a Bitext CSV (needs instruction/utterance and intent)")
            for r in reader:
                n += 1
                intent = (r.get("intent") or "").strip()
                rows.append(
                    AdapterRow(
                        id=f"bitext-{n}",
                        text=(r.get(text_col) or "").strip(),
                        lang="en",
                        intent=intent,
                        escalate=intent in ESCALATION_INTENTS,
                        out_of_scope=False,
                        topics=BITEXT_TOPICS.get(intent, ()),
                        flags=(r.get("flags") or r.get("tags") or "").strip(),
                    )
                )
    return spread([r for r in rows if r.text], limit)


CLINC_SPLITS = ("test", "oos_test")


def read_clinc150(
    path: Path, *, limit: int | None = None, splits: Sequence[str] = CLINC_SPLITS
) -> list[AdapterRow]:
    """CLINC150 `data_full.json` (the file or its folder): in-scope and `oos` utterances."""
    f = path / "data_full.json" if path.is_dir() else path
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvalError(f"cannot read {f}: {exc.strerror}") from exc
    except ValueError as exc:
        raise EvalError(f"{f}: not JSON ({exc})") from exc
    missing = [s for s in splits if s not in data]
    if not isinstance(data, dict) or missing:
        raise EvalError(f"{f}: not a CLINC150 file (missing {', '.join(missing) or 'splits'})")
    rows = [
        AdapterRow(
            id=f"clinc-{split}-{n}",
            text=str(text),
            lang="en",
            intent=str(intent),
            escalate=False,
            out_of_scope=intent == "oos",
        )
        for split in splits
        for n, (text, intent) in enumerate(data[split], 1)
    ]
    return spread(rows, limit)


def xsid_language(path: Path) -> str:
    """`de-ba.valid.conll` -> `de-ba`."""
    return path.name.split(".", 1)[0]


def conll_utterances(text: str) -> list[tuple[str, str]]:
    """(text, intent) of each CoNLL block that has both `# text = ` and `# intent = ` lines."""
    out: list[tuple[str, str]] = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            for key in ("text", "intent"):
                prefix = f"# {key} = "
                if line.startswith(prefix):
                    fields[key] = line[len(prefix) :].strip()
        if fields.get("text") and fields.get("intent"):
            out.append((fields["text"], fields["intent"]))
    return out


def read_xsid(path: Path, *, limit: int | None = None) -> list[AdapterRow]:
    """xSID CoNLL files (a file, or a folder of `*.conll`); the language is in the file name."""
    rows = [
        AdapterRow(
            id=f"xsid-{f.name}-{n}",
            text=text,
            lang=xsid_language(f),
            intent=intent,
            escalate=False,
            out_of_scope=False,
        )
        for f in _files(path, "*.conll")
        for n, (text, intent) in enumerate(
            conll_utterances(f.read_text(encoding="utf-8").replace("\r\n", "\n")), 1
        )
    ]
    if not rows:
        raise EvalError(f"{path}: no `# text =` / `# intent =` blocks found")
    return spread(rows, limit)


class Reader(Protocol):
    def __call__(self, path: Path, *, limit: int | None = None) -> list[AdapterRow]: ...


READERS: dict[str, Reader] = {
    "bitext": read_bitext,
    "clinc150": read_clinc150,
    "xsid": read_xsid,
}
