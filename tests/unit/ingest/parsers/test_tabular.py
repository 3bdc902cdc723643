from __future__ import annotations

import pytest

from strata.ingest import parse_document
from strata.ingest.parsing import CSV, TSV


def test_csv_rows_become_paragraphs_of_named_values() -> None:
    data = b'name,age,city\nAlice,42,Paris\n"Smith, Bob",,"New\nYork"\n\n'

    doc = parse_document(data, key="tenants/acme/people.csv")

    assert doc.content_type == CSV
    assert doc.title == "people"
    assert doc.pages[0].text == "name: Alice; age: 42; city: Paris\n\nname: Smith, Bob; city: New York"
    assert doc.pages[0].sections == ()


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (b"sku;price\nA-1;3,50\nB-2;4,00\n", "prices.csv"),  # a European export
        (b"sku\tprice\nA-1\t3,50\nB-2\t4,00\n", "prices.tsv"),
        (b"sku|price\nA-1|3,50\nB-2|4,00\n", "prices.csv"),
    ],
)
def test_csv_dialect_is_sniffed(data: bytes, key: str) -> None:
    assert parse_document(data, key=key).pages[0].text == "sku: A-1; price: 3,50\n\nsku: B-2; price: 4,00"


def test_tsv_keeps_its_own_content_type() -> None:
    assert parse_document(b"a\tb\n1\t2\n", key="x.tsv").content_type == TSV


def test_csv_with_ragged_rows_names_extra_columns_and_blank_headers() -> None:
    doc = parse_document(b"id,,note\n1,x,hello,surplus\n2\n", key="ragged.csv")

    assert doc.pages[0].text == "id: 1; column 2: x; note: hello; column 4: surplus\n\nid: 2"


def test_csv_in_windows_1252_is_decoded() -> None:
    data = "Stadt,Straße\nMünchen,Maximilianstraße\nKöln,Hohe Straße\n".encode("cp1252")

    text = parse_document(data, key="orte.csv").pages[0].text

    assert "Stadt: München; Straße: Maximilianstraße" in text


def test_a_header_only_csv_still_says_what_it_holds() -> None:
    assert parse_document(b"date,amount,payee\n", key="empty.csv").pages[0].text == "date; amount; payee"


def test_a_csv_cell_longer_than_the_csv_module_default_limit_is_read() -> None:
    long_text = "word " * 60_000  # 300 kB, over the csv module's 128 KiB default

    text = parse_document(f"title,body\nEssay,{long_text}\n".encode(), key="essays.csv").pages[0].text

    assert text.startswith("title: Essay; body: word word")
    assert len(text) > 290_000
