"""Turn the bytes of an uploaded file into titled pages of plain text.

Supported types: plain text (``.txt``), Markdown (``.md``), HTML (``.html``/``.htm``), PDF, Word
(``.docx``), CSV/TSV, JSON and JSON Lines (``.jsonl``/``.ndjson``); one parser module each under
:mod:`strata.ingest.parsers`. The type comes from the key's extension when it is a known one (S3
content types are often the generic ``binary/octet-stream``); otherwise from the content type;
otherwise the file is rejected. Each type has a size limit (:func:`max_bytes_for`), checked
before parsing.

Text formats are decoded by :func:`decode_text` (the rule is in
:mod:`strata.ingest.parsers.charset`). Page texts are what the chunker slices: chunk offsets
refer to them, and so do the ``Page.sections`` that formats with headings fill.
"""

from __future__ import annotations

import logging

from strata.ingest.exceptions import UnreadableDocumentError, UnsupportedDocumentError
from strata.ingest.parsers.base import file_name, format_size
from strata.ingest.parsers.charset import decode_text
from strata.ingest.parsers.registry import DEFAULT_REGISTRY, declared_charset
from strata.ingest.parsers.types import (
    CSV,
    DOCX,
    HTML,
    JSON,
    JSON_LINES,
    MARKDOWN,
    PDF,
    TEXT,
    TSV,
    Page,
    ParsedDocument,
    Section,
)

__all__ = (
    "CSV",
    "DOCX",
    "HTML",
    "JSON",
    "JSON_LINES",
    "MARKDOWN",
    "PDF",
    "SUPPORTED_EXTENSIONS",
    "TEXT",
    "TSV",
    "Page",
    "ParsedDocument",
    "Section",
    "decode_text",
    "detect_content_type",
    "max_bytes_for",
    "parse_document",
)

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: tuple[str, ...] = DEFAULT_REGISTRY.extensions


def parse_document(data: bytes, *, key: str, content_type: str | None = None) -> ParsedDocument:
    """Parse an uploaded file into a :class:`ParsedDocument`.

    Parameters
    ----------
    data
        The file's bytes.
    key
        The object key or file name; its extension picks the parser and its name is the
        fallback title.
    content_type
        The content type the upload declared, if any (parameters such as ``charset`` are read).

    Raises
    ------
    UnsupportedDocumentError
        Neither the extension nor the content type is a supported one, or the file is larger
        than its type's limit.
    UnreadableDocumentError
        The file is empty, binary, damaged, or has no extractable text.

    Examples
    --------
    >>> doc = parse_document(b"# Hello\\n\\nWorld.", key="tenants/acme/notes.md")
    >>> doc.title, doc.pages[0].text
    ('Hello', '# Hello\\n\\nWorld.')
    """
    name = file_name(key)
    parser = DEFAULT_REGISTRY.for_file(key, content_type)
    if not data:
        raise UnreadableDocumentError(f"'{name}' is empty (0 bytes).", key=key)
    if len(data) > parser.max_bytes:
        raise UnsupportedDocumentError(
            f"'{name}' is {format_size(len(data))} ({len(data):,} bytes), over the {format_size(parser.max_bytes)} "
            f"limit for {parser.name} files.",
            key=key,
        )
    doc = parser.parse(data, key=key, charset=declared_charset(content_type))
    if not any(page.text.strip() for page in doc.pages):
        raise UnreadableDocumentError(f"'{name}' contains no text.", key=key)
    logger.debug("parsed %s as %s: %d pages, %d chars", key, doc.content_type, len(doc.pages), doc.char_count)
    return doc


def detect_content_type(key: str, content_type: str | None = None) -> str:
    """The canonical content type Strata parses ``key`` as, or raise :class:`UnsupportedDocumentError`."""
    return DEFAULT_REGISTRY.for_file(key, content_type).content_type


def max_bytes_for(key: str, content_type: str | None = None) -> int:
    """The largest file of ``key``'s type that :func:`parse_document` accepts, so a caller can refuse a
    larger one before reading it; raises :class:`UnsupportedDocumentError` for an unsupported type."""
    return DEFAULT_REGISTRY.for_file(key, content_type).max_bytes
