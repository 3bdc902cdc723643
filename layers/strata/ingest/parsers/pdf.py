"""PDF: one page of text per PDF page (pypdf's text layer), the outline as sections.

A PDF with no text on any page is a scan or a picture: it is refused rather than indexed empty,
since text recognition (OCR) is not supported. Sections come from the outline (bookmarks) where
the bookmark's title can be found on its page; a page that starts inside a section begins with a
section at offset 0 carrying the heading path in force, so every page maps to its headings.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from strata.ingest.exceptions import UnreadableDocumentError
from strata.ingest.parsers.base import MEGABYTE, Parser, clean_title, fallback_title, file_name, reason
from strata.ingest.parsers.types import PDF, Page, ParsedDocument, Section

if TYPE_CHECKING:
    from pypdf import PdfReader

logger = logging.getLogger(__name__)

NO_TEXT_LAYER = "no text layer (scanned?)"
_MAX_OUTLINE_ENTRIES = 10_000


class PdfParser(Parser):
    name = "PDF"
    content_types = (PDF,)
    extensions = (".pdf",)
    max_bytes = 50 * MEGABYTE

    def parse(self, data: bytes, *, key: str, charset: str | None) -> ParsedDocument:
        reader = _open(data, key=key)
        texts = [_page_text(reader, number, key) for number in range(1, len(reader.pages) + 1)]
        if not any(text.strip() for text in texts):
            raise UnreadableDocumentError(
                f"'{file_name(key)}' has {NO_TEXT_LAYER}: it may be an image of pages, and text recognition (OCR) "
                "is not supported.",
                key=key,
            )
        sections = _outline_sections(reader, texts, key)
        pages = [Page(number, text, sections[number - 1]) for number, text in enumerate(texts, start=1)]
        return ParsedDocument(title=_title(reader) or fallback_title(key), pages=pages, content_type=PDF)


def _open(data: bytes, *, key: str) -> PdfReader:
    from pypdf import PdfReader

    name = file_name(key)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _decrypt_without_password(reader):
            raise UnreadableDocumentError(f"'{name}' is password protected; upload a copy without a password.", key=key)
        len(reader.pages)  # reads the page tree: a damaged file fails here, not halfway through
    except UnreadableDocumentError:
        raise
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on bad input
        raise UnreadableDocumentError(
            f"'{name}' is not a readable PDF file (it may be damaged or incomplete): {reason(exc)}", key=key
        ) from exc
    return reader


def _decrypt_without_password(reader: PdfReader) -> bool:
    # Many PDFs are "encrypted" with an empty user password only to restrict printing or copying.
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


def _page_text(reader: PdfReader, number: int, key: str) -> str:
    try:
        text = reader.pages[number - 1].extract_text() or ""
    except Exception as exc:  # one damaged page should not lose the rest of the document
        logger.warning("could not extract text from page %d of %s: %s", number, key, reason(exc))
        return ""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        raw = metadata.title if metadata is not None else None
    except Exception:
        return None
    title = clean_title(str(raw)) if raw else None
    return title if title and title.lower() not in {"untitled", "untitled document"} else None


def _outline_sections(reader: PdfReader, texts: list[str], key: str) -> list[tuple[Section, ...]]:
    """Per page, the sections its bookmarks open, led by the heading path carried over from before."""
    per_page: list[list[Section]] = [[] for _ in texts]
    try:
        entries = sorted(_outline_entries(reader, reader.outline, ()), key=lambda entry: entry[0])
    except Exception as exc:  # a broken outline costs the headings, never the text
        logger.warning("ignored the outline of %s: %s", key, reason(exc))
        entries = []
    searched_from = [0] * len(texts)
    for page_index, path in entries:
        if not 0 <= page_index < len(texts):
            continue
        text = texts[page_index]
        found = text.find(path[-1], searched_from[page_index])
        if found < 0:
            continue
        line_start = text.rfind("\n", 0, found) + 1
        start = line_start if not text[line_start:found].strip() else found
        per_page[page_index].append(Section(start, path))
        searched_from[page_index] = found + len(path[-1])
    carried: tuple[str, ...] = ()
    result: list[tuple[Section, ...]] = []
    for sections in per_page:
        if carried and (not sections or sections[0].char_start > 0):
            sections.insert(0, Section(0, carried))
        result.append(tuple(sections))
        if sections:
            carried = sections[-1].heading_path
    return result


def _outline_entries(
    reader: PdfReader, outline: list[Any], parent: tuple[str, ...]
) -> Iterator[tuple[int, tuple[str, ...]]]:
    """``(page index, heading path)`` per bookmark: pypdf nests children as a list after their parent."""
    path = parent
    count = 0
    for item in outline:
        if isinstance(item, list):
            yield from _outline_entries(reader, item, path)
            continue
        title = clean_title(str(item.title or ""))
        if not title:
            continue
        count += 1
        if count > _MAX_OUTLINE_ENTRIES:
            return
        path = (*parent, title)
        page_index = reader.get_destination_page_number(item)
        if page_index is not None:
            yield page_index, path
