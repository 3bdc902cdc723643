from __future__ import annotations

import io
import zipfile

import pytest
from docx import Document
from docx.enum.style import WD_STYLE_TYPE

from strata.ingest import UnreadableDocumentError, parse_document
from strata.ingest.parsing import DOCX


def to_bytes(document: Document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def handbook() -> bytes:
    document = Document()
    document.add_paragraph("Staff Handbook", style="Title")
    document.add_paragraph("Welcome aboard.")
    document.add_heading("Leave", level=1)
    document.add_paragraph("Everyone gets 25 days.")
    document.add_paragraph("")  # an empty paragraph is not text
    document.add_heading("Sick leave", level=2)
    rows = [("Days", "Note", "Paid"), ("1-3", "no certificate", "yes"), ("4+", "", "yes")]
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for row, values in zip(table.rows, rows, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_heading("Travel", level=1)
    custom = document.styles.add_style("Policy Heading", WD_STYLE_TYPE.PARAGRAPH)
    custom.base_style = document.styles["Heading 2"]
    document.add_paragraph("Trains", style="Policy Heading")
    document.add_paragraph("Second class, always.")
    return to_bytes(document)


def test_docx_reads_paragraphs_and_tables_in_order_with_column_names() -> None:
    doc = parse_document(handbook(), key="tenants/acme/handbook.docx", content_type="application/octet-stream")

    assert doc.content_type == DOCX
    assert doc.title == "Staff Handbook"
    assert doc.pages[0].text == (
        "Staff Handbook\n\nWelcome aboard.\n\nLeave\n\nEveryone gets 25 days.\n\nSick leave\n\n"
        "Days: 1-3; Note: no certificate; Paid: yes\nDays: 4+; Paid: yes\n\n"
        "Travel\n\nTrains\n\nSecond class, always."
    )


def test_docx_heading_styles_become_sections_under_the_title() -> None:
    page = parse_document(handbook(), key="handbook.docx").pages[0]

    assert [section.heading_path for section in page.sections] == [
        ("Staff Handbook",),
        ("Staff Handbook", "Leave"),
        ("Staff Handbook", "Leave", "Sick leave"),
        ("Staff Handbook", "Travel"),
        ("Staff Handbook", "Travel", "Trains"),  # a style based on Heading 2
    ]
    for section in page.sections:
        assert page.text[section.char_start :].startswith(section.heading_path[-1])


def test_docx_title_property_wins_and_merged_cells_count_once() -> None:
    document = Document()
    document.core_properties.title = "Price list 2026"
    table = document.add_table(rows=2, cols=3)
    header = table.rows[0].cells
    header[0].text, header[1].text = "Item", "Price"
    header[1].merge(header[2])
    body = table.rows[1].cells
    body[0].text, body[1].text, body[2].text = "Tea", "3 EUR", "extra"

    doc = parse_document(to_bytes(document), key="prices.docx")

    assert doc.title == "Price list 2026"
    assert doc.pages[0].text == "Item: Tea; Price: 3 EUR; column 3: extra"
    assert doc.pages[0].sections == ()


@pytest.mark.parametrize("data", [b"not a zip at all", b"PK\x05\x06" + b"\x00" * 18])
def test_a_damaged_docx_is_unreadable_with_a_clear_reason(data: bytes) -> None:
    with pytest.raises(UnreadableDocumentError, match=r"'broken\.docx' is not a readable Word \(\.docx\) file"):
        parse_document(data, key="broken.docx")


def test_a_zip_that_is_not_a_word_document_is_unreadable() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")

    with pytest.raises(UnreadableDocumentError, match="not a readable Word"):
        parse_document(out.getvalue(), key="fake.docx")
