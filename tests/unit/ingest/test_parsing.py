from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from strata.ingest import (
    Page,
    UnreadableDocumentError,
    UnsupportedDocumentError,
    detect_content_type,
    parse_document,
)


def make_pdf(pages: list[list[str]], *, title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text line per string, correct xref offsets."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {len(pages)} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id, lines in zip(page_ids, pages, strict=True):
        shown = " T* ".join(f"({escape(line)}) Tj" for line in lines)
        stream = f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET".encode("latin-1")
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {page_id + 1} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>"
        ).encode()
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    info_id = None
    if title is not None:
        info_id = max(objects) + 1
        objects[info_id] = f"<< /Title ({escape(title)}) >>".encode("latin-1")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, objects[number]))
    xref = out.tell()
    size = max(objects) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets[number])
    info = f" /Info {info_id} 0 R" if info_id else ""
    out.write(f"trailer\n<< /Size {size} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def encrypt(pdf: bytes, *, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_parse_plain_text_keeps_the_text_and_titles_it_by_file_name() -> None:
    doc = parse_document(b"First line.\r\nSecond line.\r\n", key="tenants/acme/docs/Annual Report.v2.txt")

    assert doc.title == "Annual Report.v2"
    assert doc.content_type == "text/plain"
    assert doc.pages == [Page(None, "First line.\nSecond line.\n")]


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        ("café – “naïve”".encode("utf-8-sig"), None, "café – “naïve”"),
        ("café – “naïve”".encode("utf-16"), None, "café – “naïve”"),
        ("café – “naïve”".encode("cp1252"), None, "café – “naïve”"),
        ("Привет, мир".encode("koi8_r"), "text/plain; charset=KOI8-R", "Привет, мир"),
        ("東京都は日本の首都です。".encode("shift_jis"), None, "東京都は日本の首都です。"),  # detected
    ],
)
def test_parse_text_decodes_utf8_bom_utf16_declared_charset_then_legacy(
    data: bytes, content_type: str | None, expected: str
) -> None:
    assert parse_document(data, key="notes.txt", content_type=content_type).pages[0].text == expected


def test_parse_markdown_titles_by_the_first_level_one_heading_outside_code() -> None:
    text = "Intro line\n\n```bash\n# not a title\n```\n\n## Sub\n\n# Real Title #\n\nBody."

    doc = parse_document(text.encode(), key="guide.md")

    assert doc.title == "Real Title"
    assert doc.content_type == "text/markdown"
    assert doc.pages[0].text == text  # Markdown is indexed as written


def test_parse_markdown_without_heading_falls_back_to_the_file_name() -> None:
    assert parse_document(b"just text", key="a/b/release-notes.md").title == "release-notes"


def test_parse_html_drops_scripts_styles_and_navigation() -> None:
    html = b"""<!DOCTYPE html><html><head><title> Refund  Policy </title>
    <style>body { color: red }</style><script>var secret = "do not index";</script></head>
    <body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
    <h1>Refunds</h1><p>Refunds are paid within <b>14 days</b>.</p><!-- hidden comment -->
    <ul><li>Keep the receipt</li><li>Use the form &amp; send it</li></ul>
    <script>track()</script><p>Questions?<br>Call us.</p></body></html>"""

    doc = parse_document(html, key="policy.html")

    assert doc.title == "Refund Policy"
    assert doc.content_type == "text/html"
    assert doc.pages[0].text == (
        "Refunds\n\nRefunds are paid within 14 days.\n\n"
        "Keep the receipt\nUse the form & send it\n\nQuestions?\nCall us."
    )


def test_parse_html_titles_by_the_first_h1_without_a_title_tag() -> None:
    doc = parse_document(b"<html><body><h1>Shipping <em>Rules</em></h1><p>Text.</p></body></html>", key="x.htm")

    assert doc.title == "Shipping Rules"


def test_parse_pdf_gives_one_numbered_page_per_pdf_page() -> None:
    pdf = make_pdf([["Kangaroos live in Australia.", "They hop."], ["Penguins live in Antarctica."]], title="Animals")

    doc = parse_document(pdf, key="tenants/acme/animals.pdf", content_type="application/pdf")

    assert doc.title == "Animals"
    assert doc.content_type == "application/pdf"
    assert [page.number for page in doc.pages] == [1, 2]
    assert "Kangaroos live in Australia." in doc.pages[0].text
    assert "They hop." in doc.pages[0].text
    assert "Penguins live in Antarctica." in doc.pages[1].text
    assert "Penguins" not in doc.pages[0].text


def test_parse_pdf_without_a_title_uses_the_file_name() -> None:
    assert parse_document(make_pdf([["Text."]]), key="docs/Q3 results.pdf").title == "Q3 results"


def test_parse_pdf_opens_a_pdf_encrypted_with_an_empty_user_password() -> None:
    pdf = encrypt(make_pdf([["Readable by anyone."]]), user_password="")

    assert "Readable by anyone." in parse_document(pdf, key="locked.pdf").pages[0].text


def test_parse_pdf_with_a_password_is_unreadable() -> None:
    pdf = encrypt(make_pdf([["Secret."]]), user_password="secret")

    with pytest.raises(UnreadableDocumentError, match="password protected"):
        parse_document(pdf, key="locked.pdf")


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\n1 0 obj garbage", b"this is not a pdf at all", make_pdf([["Cut short."]])[:60]],
)
def test_parse_corrupt_pdf_is_unreadable_with_a_clear_reason(data: bytes) -> None:
    with pytest.raises(UnreadableDocumentError, match=r"'broken\.pdf' is not a readable PDF file"):
        parse_document(data, key="tenants/acme/broken.pdf")


def test_parse_pdf_without_text_suggests_it_is_a_scan() -> None:
    with pytest.raises(UnreadableDocumentError, match=r"no text layer \(scanned\?\).*OCR"):
        parse_document(make_pdf([[], []]), key="scan.pdf")


@pytest.mark.parametrize(
    ("key", "content_type", "message"),
    [
        ("report.odt", None, r"'report\.odt' is a '\.odt' file"),
        ("slides.PPTX", "application/octet-stream", r"'\.pptx' file \(content type 'application/octet-stream'\)"),
        ("archive", "application/zip", r"a file without an extension \(content type 'application/zip'\)"),
    ],
)
def test_parse_unsupported_types_name_the_type(key: str, content_type: str | None, message: str) -> None:
    with pytest.raises(UnsupportedDocumentError, match=message) as raised:
        parse_document(b"data", key=key, content_type=content_type)

    assert ".txt, .text, .md" in str(raised.value)
    assert raised.value.key == key


@pytest.mark.parametrize(
    ("key", "content_type", "expected"),
    [
        ("notes", "text/markdown; charset=utf-8", "text/markdown"),
        ("page.HTM", None, "text/html"),
        ("paper.pdf", "binary/octet-stream", "application/pdf"),
        ("readme.rst", "text/plain", "text/plain"),
    ],
)
def test_detect_content_type_prefers_a_known_extension_then_the_content_type(
    key: str, content_type: str | None, expected: str
) -> None:
    assert detect_content_type(key, content_type) == expected


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        (b"", "empty.txt", r"'empty\.txt' is empty \(0 bytes\)"),
        (b"", "empty.pdf", r"'empty\.pdf' is empty"),
        (b" \n\t\r\n ", "blank.md", r"'blank\.md' contains no text"),
        (b"<html><script>only()</script></html>", "blank.html", "contains no text"),
        (bytes(range(256)) * 8, "dump.txt", "binary data"),
        (bytes(range(1, 32)) * 40, "dump.txt", "binary file"),
    ],
)
def test_parse_empty_or_binary_files_are_unreadable(data: bytes, key: str, message: str) -> None:
    with pytest.raises(UnreadableDocumentError, match=message):
        parse_document(data, key=key)
