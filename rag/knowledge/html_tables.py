"""HTML tables read from the page itself: the HTML loader keeps a page's headings but flattens
each table into one cell per line, which loses which header a cell sits under."""

from __future__ import annotations

import re
from html.parser import HTMLParser


class _HtmlTables(HTMLParser):
    """HTML reduced to its headings and tables, written as Markdown."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._heading: int | None = None
        self._text: list[str] = []
        self._rows: list[list[str]] | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style", "template"}:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading, self._text = int(tag[1]), []
        elif tag == "table":
            self._rows = []
        elif tag == "tr" and self._rows is not None:
            self._row = []
        elif tag in {"td", "th"} and self._row is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style", "template"}:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            text = " ".join("".join(self._text).split())
            if text and self._rows is None:
                self.out.append(f"\n{'#' * self._heading} {text}\n")
            self._heading = None
        elif tag in {"td", "th"} and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).replace("|", "/").split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._rows is not None:
            if any(self._row):
                self._rows.append(self._row)
            self._row = None
        elif tag == "table" and self._rows is not None:
            rows, self._rows = self._rows, None
            if len(rows) >= 2:  # a header and at least one row: else it is layout, not data
                self.tables.append(rows)
                width = max(len(r) for r in rows)
                lines = ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in rows]
                lines.insert(1, "|" + "---|" * width)
                self.out.append("\n" + "\n".join(lines) + "\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif self._heading is not None:
            self._text.append(data)


def html_tables_markdown(html: str) -> str:
    """An HTML page's headings and tables as Markdown, for compiling its table rows."""
    parser = _HtmlTables()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.out)


def html_table_cells(html: str) -> set[str]:
    """Every cell's text in a page's tables (to recognise them in the flattened text)."""
    parser = _HtmlTables()
    parser.feed(html)
    parser.close()
    return {cell for table in parser.tables for row in table for cell in row if cell}
