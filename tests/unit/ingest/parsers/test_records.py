from __future__ import annotations

import json

import pytest

from strata.ingest import UnreadableDocumentError, parse_document
from strata.ingest.parsing import JSON, JSON_LINES

ORDERS = [
    {"id": 7, "customer": {"name": "Ana", "address": {"city": "Lisbon"}}, "paid": True, "tags": ["gift", "express"]},
    {"id": 8, "customer": {"name": "Ben"}, "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2"}], "note": None},
]


def test_a_json_array_is_a_list_of_records_with_dotted_field_paths() -> None:
    doc = parse_document(json.dumps(ORDERS).encode(), key="tenants/acme/orders.json")

    assert doc.content_type == JSON
    assert doc.title == "orders"
    assert doc.pages[0].text == (
        "id: 7\ncustomer.name: Ana\ncustomer.address.city: Lisbon\npaid: true\ntags: gift, express\n\n"
        "id: 8\ncustomer.name: Ben\nitems[0].sku: A-1\nitems[0].qty: 2\nitems[1].sku: B-2"
    )


def test_a_json_object_is_one_record_and_multiline_strings_stay_on_their_line() -> None:
    data = json.dumps({"faq": {"question": "Refunds?", "answer": "Within\n\n14 days."}}).encode()

    assert parse_document(data, key="faq.json").pages[0].text == "faq.question: Refunds?\nfaq.answer: Within 14 days."


@pytest.mark.parametrize("key", ["orders.jsonl", "orders.ndjson"])
def test_json_lines_give_one_paragraph_per_line(key: str) -> None:
    data = "\n".join(json.dumps(order) for order in ORDERS).encode() + b"\n\n"

    doc = parse_document(data, key=key)

    assert doc.content_type == JSON_LINES
    paragraphs = doc.pages[0].text.split("\n\n")
    assert len(paragraphs) == 2
    assert paragraphs[1].startswith("id: 8\ncustomer.name: Ben")


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        (b'{"a": 1,}', "bad.json", r"'bad\.json' is not valid JSON \(line 1, column 9\)"),
        (b'{"a": 1}\n{"a": \n', "bad.jsonl", r"'bad\.jsonl' is not valid JSON Lines \(line 2, column"),
        (b"[" * 100_000 + b"]" * 100_000, "deep.json", "nested too deeply"),
    ],
)
def test_invalid_json_is_unreadable_naming_where(data: bytes, key: str, message: str) -> None:
    with pytest.raises(UnreadableDocumentError, match=message):
        parse_document(data, key=key)
