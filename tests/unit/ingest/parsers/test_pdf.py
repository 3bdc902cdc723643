from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from strata.ingest import Section, UnreadableDocumentError, parse_document

SAMPLE = Path(__file__).resolve().parents[4] / "docs" / "samples" / "my-notes.pdf"


def scanned_pdf(pages: int) -> bytes:
    """Pages without a text layer, as a scanner that does no OCR writes them."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_pdf_without_a_text_layer_is_refused_as_scanned() -> None:
    with pytest.raises(UnreadableDocumentError) as raised:
        parse_document(scanned_pdf(3), key="tenants/acme/scan.pdf")

    assert "'scan.pdf' has no text layer (scanned?)" in str(raised.value)
    assert raised.value.key == "tenants/acme/scan.pdf"


def test_the_readme_sample_pdf_parses_with_its_text_and_title() -> None:
    doc = parse_document(SAMPLE.read_bytes(), key="tenants/dev/my-notes.pdf")

    assert SAMPLE.stat().st_size < 20_000
    assert doc.title == "My notes: the lantern moths of Varrow Island"
    assert [page.number for page in doc.pages] == [1, 2]
    assert "Lantern moths rest by day in the crevices of the sea cliffs" in doc.pages[0].text
    assert "The caterpillars feed only on sea thrift" in doc.pages[1].text


def test_pdf_outline_entries_become_sections_carried_across_pages() -> None:
    pages = parse_document(SAMPLE.read_bytes(), key="my-notes.pdf").pages
    top = "The Lantern Moths of Varrow Island"

    assert [section.heading_path for section in pages[0].sections] == [
        (top,),
        (top, "Where they live"),
        (top, "How they glow"),
    ]
    assert [section.heading_path for section in pages[1].sections] == [(top, "What they eat"), (top, "Counting them")]
    for page in pages:
        for section in page.sections:
            assert page.text[section.char_start :].startswith(section.heading_path[-1])


def test_a_page_that_starts_inside_a_section_carries_its_heading_path() -> None:
    writer = PdfWriter(clone_from=PdfReader(SAMPLE))
    writer.insert_blank_page(index=1)  # a page without bookmarks, inside "How they glow"
    out = io.BytesIO()
    writer.write(out)
    pages = parse_document(out.getvalue(), key="my-notes.pdf").pages

    top = "The Lantern Moths of Varrow Island"
    assert pages[1].text == ""
    assert pages[1].sections == (Section(0, (top, "How they glow")),)
    assert pages[2].sections[0] == Section(0, (top, "What they eat"))
