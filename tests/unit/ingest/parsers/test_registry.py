from __future__ import annotations

import pytest

from strata.ingest import UnreadableDocumentError, UnsupportedDocumentError, max_bytes_for, parse_document
from strata.ingest.parsers import DEFAULT_REGISTRY, Page, ParsedDocument, Parser, ParserRegistry
from strata.ingest.parsing import CSV, DOCX, JSON, JSON_LINES, MARKDOWN, PDF, SUPPORTED_EXTENSIONS, TEXT, TSV


class _Shout(Parser):
    name = "shout"
    content_types = ("text/x-shout",)
    extensions = (".shout",)
    max_bytes = 10

    def parse(self, data: bytes, *, key: str, charset: str | None) -> ParsedDocument:
        return ParsedDocument(title=key, pages=[Page(None, data.decode().upper())], content_type=self.content_type)


@pytest.mark.parametrize(
    ("key", "content_type", "expected"),
    [
        ("a/report.DOCX", "binary/octet-stream", DOCX),
        ("rows.csv", None, CSV),
        ("rows.tsv", None, TSV),
        ("data.json", None, JSON),
        ("events.jsonl", None, JSON_LINES),
        ("events.ndjson", None, JSON_LINES),
        ("export", "application/x-ndjson", JSON_LINES),
        ("notes", "text/x-markdown; charset=utf-8", MARKDOWN),
        ("scan.pdf", "text/plain", PDF),  # a known extension beats the declared type
        ("readme.rst", "text/plain", TEXT),
    ],
)
def test_registry_picks_a_parser_by_extension_then_by_content_type(
    key: str, content_type: str | None, expected: str
) -> None:
    assert DEFAULT_REGISTRY.for_file(key, content_type).content_type == expected


def test_supported_extensions_list_every_format_with_the_original_ones_first() -> None:
    assert SUPPORTED_EXTENSIONS[:7] == (".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf")
    assert {".docx", ".csv", ".tsv", ".json", ".jsonl", ".ndjson"} <= set(SUPPORTED_EXTENSIONS)


def test_registry_refuses_two_parsers_claiming_one_extension() -> None:
    class _Other(_Shout):
        content_types = ("text/x-other",)

    with pytest.raises(ValueError, match="extension '.shout' is claimed by both _Shout and _Other"):
        ParserRegistry([_Shout(), _Other()])


def test_a_custom_registry_routes_to_its_own_parser() -> None:
    registry = ParserRegistry([_Shout()])

    parser = registry.for_file("x.shout")

    assert parser.parse(b"hey", key="x.shout", charset=None).pages[0].text == "HEY"
    with pytest.raises(UnsupportedDocumentError, match=r"Supported types: \.shout\."):
        registry.for_file("x.txt")


@pytest.mark.parametrize(
    ("key", "limit"),
    [("a.txt", 20), ("a.md", 20), ("a.html", 20), ("a.csv", 20), ("a.json", 20), ("a.pdf", 50), ("a.docx", 50)],
)
def test_max_bytes_for_gives_each_type_its_limit_in_mebibytes(key: str, limit: int) -> None:
    assert max_bytes_for(key) == limit * 1024 * 1024


def test_max_bytes_for_an_unsupported_type_raises() -> None:
    with pytest.raises(UnsupportedDocumentError, match=r"'a\.exe' is a '\.exe' file"):
        max_bytes_for("tenants/acme/a.exe")


def test_a_file_over_its_type_limit_is_refused_naming_file_size_and_limit() -> None:
    too_big = b"a" * (max_bytes_for("big.txt") + 1)

    with pytest.raises(UnsupportedDocumentError) as raised:
        parse_document(too_big, key="tenants/acme/big.txt")

    message = str(raised.value)
    assert "'big.txt' is 20 MiB (20,971,521 bytes), over the 20 MiB limit for text files" in message
    assert raised.value.key == "tenants/acme/big.txt"


def test_a_file_at_its_type_limit_is_parsed() -> None:
    exactly = b"a" * max_bytes_for("big.csv")

    doc = parse_document(exactly, key="big.csv")

    assert doc.content_type == CSV


def test_a_parsed_document_without_text_is_unreadable_whatever_the_format() -> None:
    with pytest.raises(UnreadableDocumentError, match=r"'empty\.json' contains no text"):
        parse_document(b"[{}, null, []]", key="empty.json")
