from __future__ import annotations

import pytest

from strata.ingest import UnreadableDocumentError, decode_text, parse_document

GERMAN = "Grüße aus München: die Straße am Fluss ist schön, der Bär läuft über die Brücke."
JAPANESE = "東京は日本の首都です。今日は良い天気ですね。明日も晴れるでしょう。"
RUSSIAN = "Привет, мир. Как дела? Сегодня хорошая погода, и мы идём гулять в парк."


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("café – “naïve” — 5 €".encode("cp1252"), "café – “naïve” — 5 €"),  # Windows-1252 wins a tie
        (GERMAN.encode("cp1252"), GERMAN),
        (JAPANESE.encode("shift_jis"), JAPANESE),
        (RUSSIAN.encode("cp1251"), RUSSIAN),
        (JAPANESE.encode("utf-16"), JAPANESE),  # with its byte-order mark
        (("\ufeff" + GERMAN).encode("utf-16-be"), GERMAN),
    ],
)
def test_decode_text_detects_the_encoding_of_text_that_is_not_utf8(data: bytes, expected: str) -> None:
    assert decode_text(data, key="notes.txt") == expected


def test_decode_text_reads_bom_less_utf16_when_the_upload_declares_it() -> None:
    data = GERMAN.encode("utf-16-le")

    assert decode_text(data, key="notes.txt", charset="utf-16le") == GERMAN
    with pytest.raises(UnreadableDocumentError, match="NUL bytes"):
        decode_text(data, key="notes.txt")  # undeclared, its NULs make it binary


def test_a_declared_charset_is_used_before_detection() -> None:
    doc = parse_document("Привет, мир".encode("koi8_r"), key="a.txt", content_type="text/plain; charset=KOI8-R")

    assert doc.pages[0].text == "Привет, мир"


def test_utf8_is_taken_as_is_and_line_endings_are_normalised() -> None:
    assert decode_text("naïve\r\nline\rend".encode()) == "naïve\nline\nend"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00" * 50, "NUL bytes"),
        (bytes(range(1, 32)) * 40, "control characters"),
        (bytes(range(0x80, 0x100)) * 8, "not text in any character encoding"),
    ],
)
def test_binary_data_is_rejected_not_decoded(data: bytes, message: str) -> None:
    with pytest.raises(UnreadableDocumentError, match=message) as raised:
        decode_text(data, key="tenants/acme/blob.txt")

    assert "'blob.txt'" in str(raised.value)
