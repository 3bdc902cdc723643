"""Which parser reads a file: by its key's extension when known, else by its declared content type.

S3 content types are often the generic ``binary/octet-stream``, so a known extension wins. The
default registry holds every format Strata reads; adding a format is writing a :class:`Parser`
and listing it in :func:`default_parsers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath

from strata.ingest.exceptions import UnsupportedDocumentError
from strata.ingest.parsers.base import Parser, file_name
from strata.ingest.parsers.docx import DocxParser
from strata.ingest.parsers.html import HtmlParser
from strata.ingest.parsers.markdown import MarkdownParser
from strata.ingest.parsers.pdf import PdfParser
from strata.ingest.parsers.records import JsonLinesParser, JsonParser
from strata.ingest.parsers.tabular import CsvParser, TsvParser
from strata.ingest.parsers.text import TextParser


class ParserRegistry:
    """Parsers by extension and by content type; each extension and content type belongs to one parser."""

    def __init__(self, parsers: Iterable[Parser]) -> None:
        self._parsers = tuple(parsers)
        self._by_extension: dict[str, Parser] = {}
        self._by_content_type: dict[str, Parser] = {}
        for parser in self._parsers:
            for extension in parser.extensions:
                _claim(self._by_extension, extension.lower(), parser, "extension")
            for content_type in parser.content_types:
                _claim(self._by_content_type, content_type.lower(), parser, "content type")

    def __iter__(self) -> Iterator[Parser]:
        return iter(self._parsers)

    @property
    def extensions(self) -> tuple[str, ...]:
        """Every extension read, in registration order (the order messages list them in)."""
        return tuple(self._by_extension)

    def for_file(self, key: str, content_type: str | None = None) -> Parser:
        """The parser for ``key``, or raise :class:`UnsupportedDocumentError` naming what the file is."""
        name = file_name(key)
        suffix = PurePosixPath(name).suffix.lower()
        if suffix in self._by_extension:
            return self._by_extension[suffix]
        declared = media_type(content_type)
        if declared in self._by_content_type:
            return self._by_content_type[declared]
        what = f"a '{suffix}' file" if suffix else "a file without an extension"
        declared_note = f" (content type '{declared}')" if declared else ""
        raise UnsupportedDocumentError(
            f"'{name}' is {what}{declared_note}, which Strata cannot read. "
            f"Supported types: {', '.join(self.extensions)}.",
            key=key,
        )


def default_parsers() -> list[Parser]:
    return [
        TextParser(),
        MarkdownParser(),
        HtmlParser(),
        PdfParser(),
        DocxParser(),
        CsvParser(),
        TsvParser(),
        JsonParser(),
        JsonLinesParser(),
    ]


def media_type(content_type: str | None) -> str:
    """``text/html`` from ``text/html; charset=utf-8``, lower-cased; empty when none."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def declared_charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"').lower()
    return None


def _claim(table: dict[str, Parser], name: str, parser: Parser, what: str) -> None:
    if name in table:
        raise ValueError(f"{what} '{name}' is claimed by both {type(table[name]).__name__} and {type(parser).__name__}")
    table[name] = parser


DEFAULT_REGISTRY = ParserRegistry(default_parsers())
