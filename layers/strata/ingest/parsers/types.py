"""What every parser returns, and the canonical content types Strata records for documents."""

from __future__ import annotations

from dataclasses import dataclass

TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CSV = "text/csv"
TSV = "text/tab-separated-values"
JSON = "application/json"
JSON_LINES = "application/jsonl"


@dataclass(frozen=True, slots=True)
class Section:
    """From ``char_start`` in its page's text up to the next section, the text sits under
    ``heading_path`` (outermost heading first; empty before the first heading)."""

    char_start: int
    heading_path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Page:
    """The text of one page; ``number`` is 1-based for paged formats (PDF) and None otherwise.
    ``sections`` are in order of ``char_start``; a format without headings has none."""

    number: int | None
    text: str
    sections: tuple[Section, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A document as text: a title to cite it by and its pages in order."""

    title: str
    pages: list[Page]
    content_type: str

    @property
    def char_count(self) -> int:
        return sum(len(page.text) for page in self.pages)
