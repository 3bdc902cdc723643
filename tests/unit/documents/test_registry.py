from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from strata.documents import DocumentNotFoundError, DocumentRegistry, DocumentStatus, parse_source_key
from strata.documents.registry import is_older
from strata_local.aws import create_tables

SOURCE = parse_source_key("tenants/acme/report.pdf")


@pytest.fixture
def registry() -> Iterator[DocumentRegistry]:
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield DocumentRegistry(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-documents"))


def test_a_document_moves_from_indexing_to_indexed_and_counts_attempts(registry: DocumentRegistry) -> None:
    registry.mark_indexing(SOURCE, sequencer="0A", size_bytes=10)
    assert registry.get("acme", SOURCE.document_id).attempts == 1
    assert registry.get("acme", SOURCE.document_id).title == "report.pdf"

    registry.mark_indexed(SOURCE, title="Q3 report", chunks=7, content_type="application/pdf", etag="e1")
    record = registry.get("acme", SOURCE.document_id)
    assert (record.status, record.chunks, record.title, record.etag, record.attempts) == (
        DocumentStatus.INDEXED,
        7,
        "Q3 report",
        "e1",
        1,
    )


def test_an_attempt_that_never_finished_is_recorded_by_the_next(registry: DocumentRegistry) -> None:
    registry.mark_indexing(SOURCE, sequencer=None, size_bytes=10)
    registry.mark_indexing(SOURCE, sequencer=None, size_bytes=10)  # the first one timed out
    record = registry.get("acme", SOURCE.document_id)
    assert (record.status, record.attempts) == (DocumentStatus.PROCESSING, 2)
    assert "did not finish" in record.reason
    registry.mark_indexed(SOURCE, title="t", chunks=1, content_type="text/plain", etag="e")
    assert registry.get("acme", SOURCE.document_id).reason is None


def test_a_failure_keeps_its_reason_until_the_next_attempt(registry: DocumentRegistry) -> None:
    registry.mark_indexing(SOURCE, sequencer=None, size_bytes=10)
    registry.mark_failed(SOURCE, "not a PDF", chunks=0)
    assert registry.get("acme", SOURCE.document_id).reason == "not a PDF"
    registry.mark_indexing(SOURCE, sequencer=None, size_bytes=10)
    assert registry.get("acme", SOURCE.document_id).reason is None


def test_documents_are_listed_per_tenant_and_forgotten_on_delete(registry: DocumentRegistry) -> None:
    other = parse_source_key("tenants/globex/report.pdf")
    for source in (SOURCE, other):
        registry.mark_indexing(source, sequencer=None, size_bytes=1)
    assert [r.source_key for r in registry.list("acme")] == [SOURCE.key]
    assert {r.tenant for r in registry.scan()} == {"acme", "globex"}
    registry.delete(SOURCE)
    with pytest.raises(DocumentNotFoundError):
        registry.get("acme", SOURCE.document_id)


def test_stale_events_are_recognised_by_their_sequencer(registry: DocumentRegistry) -> None:
    registry.mark_indexing(SOURCE, sequencer="005B", size_bytes=1)
    assert registry.is_stale(SOURCE, "004F")
    assert not registry.is_stale(SOURCE, "005C")
    assert not registry.is_stale(SOURCE, None)
    assert not is_older("04", "005B"), "sequencers of different lengths are never called stale"
