"""Plain text: indexed as decoded, titled by the file name."""

from __future__ import annotations

from strata.ingest.parsers.base import MEGABYTE, Parser, fallback_title
from strata.ingest.parsers.charset import decode_text
from strata.ingest.parsers.types import TEXT, Page, ParsedDocument


class TextParser(Parser):
    name = "text"
    content_types = (TEXT,)
    extensions = (".txt", ".text")
    max_bytes = 20 * MEGABYTE

    def parse(self, data: bytes, *, key: str, charset: str | None) -> ParsedDocument:
        text = decode_text(data, key=key, charset=charset)
        return ParsedDocument(title=fallback_title(key), pages=[Page(None, text)], content_type=TEXT)
