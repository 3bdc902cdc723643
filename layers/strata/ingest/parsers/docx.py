"""Word documents (DOCX): the body's paragraphs and tables in reading order, headings as sections.

A paragraph styled "Title" or "Heading 1" to "Heading 9" (or a style based on one) is a heading;
"Title" sits above "Heading 1". A table's first row names its columns: every other row becomes one
line of ``column: value`` pairs, so a value keeps the name that gives it meaning. Page headers,
footers and comments are not read (they are page furniture). The title is the document's
"title" property, else its first Title paragraph, else its first heading 1, else the file name.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import TYPE_CHECKING

from strata.ingest.exceptions import UnreadableDocumentError
from strata.ingest.parsers.base import (
    MEGABYTE,
    HeadingOutline,
    Parser,
    clean_title,
    fallback_title,
    file_name,
    reason,
)
from strata.ingest.parsers.types import DOCX, Page, ParsedDocument

if TYPE_CHECKING:
    from docx.document import Document
    from docx.styles.style import BaseStyle
    from docx.table import Table, _Row

_HEADING_STYLE = re.compile(r"heading\s*([1-9])", re.I)
_TITLE_LEVEL = 0
_STYLE_BASE_DEPTH = 5
# A 50 MB file that inflates past this is a zip bomb, not a document.
_MAX_EXPANDED_BYTES = 500 * MEGABYTE
_CELL_SPACES = re.compile(r"\s+")


class DocxParser(Parser):
    name = "Word (DOCX)"
    content_types = (DOCX,)
    extensions = (".docx",)
    max_bytes = 50 * MEGABYTE

    def parse(self, data: bytes, *, key: str, charset: str | None) -> ParsedDocument:
        document = _open(data, key=key)
        outline = HeadingOutline()
        blocks: list[str] = []
        offset = 0
        first_heading: dict[int, str] = {}
        for block, level in _blocks(document):
            if blocks:
                offset += 2  # the "\n\n" joining it to the previous block
            if level is not None:
                outline.add(level, clean_title(block), offset)
                first_heading.setdefault(level, clean_title(block))
            blocks.append(block)
            offset += len(block)
        title = _core_title(document) or first_heading.get(_TITLE_LEVEL) or first_heading.get(1)
        page = Page(None, "\n\n".join(blocks), outline.sections)
        return ParsedDocument(title=title or fallback_title(key), pages=[page], content_type=DOCX)


def _open(data: bytes, *, key: str) -> Document:
    from docx import Document as load_document

    name = file_name(key)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
        if expanded > _MAX_EXPANDED_BYTES:
            raise UnreadableDocumentError(
                f"'{name}' expands to {expanded:,} bytes, more than a Word document can reasonably hold.", key=key
            )
        return load_document(io.BytesIO(data))
    except UnreadableDocumentError:
        raise
    except Exception as exc:  # zipfile, lxml and python-docx each raise their own types on bad input
        raise UnreadableDocumentError(
            f"'{name}' is not a readable Word (.docx) file (it may be damaged, or another format): {reason(exc)}",
            key=key,
        ) from exc


def _blocks(document: Document) -> list[tuple[str, int | None]]:
    """``(text, heading level or None)`` for each non-blank paragraph and table, in reading order."""
    from docx.table import Table

    blocks: list[tuple[str, int | None]] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            text = _table_text(item)
            level = None
        else:
            text = item.text.strip()
            level = _heading_level(item.style) if text else None
        if text:
            blocks.append((text, level))
    return blocks


def _heading_level(style: BaseStyle | None) -> int | None:
    for _ in range(_STYLE_BASE_DEPTH):
        if style is None:
            return None
        style_name = (style.name or "").strip()
        if style_name.lower() == "title":
            return _TITLE_LEVEL
        if match := _HEADING_STYLE.fullmatch(style_name):
            return int(match.group(1))
        style = style.base_style
    return None


def _table_text(table: Table) -> str:
    rows = [_row_cells(row) for row in table.rows]
    rows = [cells for cells in rows if any(cells)]
    if not rows:
        return ""
    if len(rows) == 1:
        return "; ".join(cell for cell in rows[0] if cell)
    header = [cell or f"column {number}" for number, cell in enumerate(rows[0], start=1)]
    lines = []
    for cells in rows[1:]:
        names = header + [f"column {number}" for number in range(len(header) + 1, len(cells) + 1)]
        pairs = [f"{column}: {value}" for column, value in zip(names, cells, strict=False) if value]
        if pairs:
            lines.append("; ".join(pairs))
    return "\n".join(lines)


def _row_cells(row: _Row) -> list[str]:
    """The row's cell texts, a merged cell once (python-docx repeats it for every grid column it spans)."""
    cells: list[str] = []
    previous = None
    for cell in row.cells:
        if previous is not None and cell._tc is previous:
            continue
        previous = cell._tc
        cells.append(_CELL_SPACES.sub(" ", cell.text).strip())
    return cells


def _core_title(document: Document) -> str | None:
    try:
        raw = document.core_properties.title
    except Exception:  # a malformed core.xml costs the title, not the document
        return None
    return clean_title(raw) if raw else None
