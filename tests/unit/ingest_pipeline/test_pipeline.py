"""The ingest pipeline and the ingest function, with AWS faked by moto and a hashing embedder
standing in for the embedding endpoint."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from moto import mock_aws

from strata.documents import DocumentRegistry, DocumentStatus, document_id_for, parse_source_key
from strata.ingest import Chunker, IngestPipeline, handle_sqs_record
from strata.retrieval import LocalVectorStore, SearchMode
from strata_local.aws import create_bucket, create_tables

BUCKET = "strata-documents"
DATASET = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "wiki-qa" / "documents"


class HashingEmbedder:
    """Deterministic bag-of-words vectors: enough for the pipeline's plumbing, no model needed."""

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        vectors = []
        for text in texts:
            vector = np.zeros(64, dtype=np.float32)
            for word in text.lower().split():
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1
            vectors.append((vector / (np.linalg.norm(vector) or 1)).tolist())
        return vectors


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        create_bucket(s3)
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        registry = DocumentRegistry(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-documents"))
        store = LocalVectorStore(tmp_path / "vectors.db")
        pipeline = IngestPipeline(
            s3=s3,
            registry=registry,
            store=store,
            embedder=HashingEmbedder(),
            chunker=Chunker.for_embedding_model(120, 20),
            max_document_bytes=200_000,
        )
        yield {"s3": s3, "registry": registry, "store": store, "pipeline": pipeline}
        store.close()


def s3_message(event: str, key: str) -> dict[str, Any]:
    from urllib.parse import quote_plus

    body = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": event,
                "awsRegion": "us-east-1",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key), "size": 1}},
            }
        ]
    }
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "r",
        "body": json.dumps(body),
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:strata-ingest",
        "awsRegion": "us-east-1",
    }


def run_batch(pipeline: IngestPipeline, messages: list[dict[str, Any]]) -> list[str]:
    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event={"Records": messages},
        record_handler=lambda record: handle_sqs_record(record, pipeline),
        processor=processor,
    )
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_created_object_is_chunked_embedded_and_indexed_with_its_source(env: dict[str, Any]) -> None:
    key = "tenants/acme/zoo/kangaroo notes.txt"
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=(DATASET / "s08_set1_a1_kangaroo.txt").read_bytes())

    assert run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)]) == []

    record = env["registry"].get("acme", document_id_for(key))
    assert record.status == DocumentStatus.INDEXED
    assert record.chunks == env["store"].count("acme") > 5
    assert record.progress_percent == 100
    assert record.title
    hits = env["store"].search(
        tenant="acme", query_text="kangaroo joey pouch", query_vector=None, k=3, mode=SearchMode.KEYWORD
    )
    assert hits and all(hit.source_key == key for hit in hits)
    assert env["store"].count("other") == 0


def test_reupload_replaces_and_removal_deletes_the_documents_chunks(env: dict[str, Any]) -> None:
    key = "tenants/acme/a.md"
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"# A\n\n" + b"kangaroos hop. " * 400)
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])
    first = env["store"].count("acme")
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"# A\n\nshort now.")
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])
    assert env["store"].count("acme") == 1 < first

    env["s3"].delete_object(Bucket=BUCKET, Key=key)
    assert run_batch(env["pipeline"], [s3_message("ObjectRemoved:Delete", key)]) == []
    assert env["store"].count("acme") == 0
    assert env["registry"].find("acme", document_id_for(key)) is None


def test_bad_documents_fail_alone_with_their_reason(env: dict[str, Any]) -> None:
    good, corrupt, unsupported, too_big = (
        "tenants/acme/good.txt",
        "tenants/acme/bad.pdf",
        "tenants/acme/x.exe",
        "tenants/acme/big.txt",
    )
    env["s3"].put_object(Bucket=BUCKET, Key=good, Body=b"Quokkas live on Rottnest Island.")
    env["s3"].put_object(Bucket=BUCKET, Key=corrupt, Body=b"%PDF-1.4 garbage")
    env["s3"].put_object(Bucket=BUCKET, Key=unsupported, Body=b"MZ\x00\x01")
    env["s3"].put_object(Bucket=BUCKET, Key=too_big, Body=b"a " * 150_000)
    messages = [s3_message("ObjectCreated:Put", k) for k in (corrupt, good, unsupported, too_big)]

    failed = run_batch(env["pipeline"], messages)

    assert failed == [messages[0]["messageId"], messages[2]["messageId"], messages[3]["messageId"]]
    assert env["registry"].get("acme", document_id_for(good)).status == DocumentStatus.INDEXED
    for key in (corrupt, unsupported, too_big):
        record = env["registry"].get("acme", document_id_for(key))
        assert record.status == DocumentStatus.FAILED
        assert record.reason
    assert "limit" in env["registry"].get("acme", document_id_for(too_big)).reason


def test_s3_test_events_and_objects_outside_the_tenant_prefix_are_not_failures(env: dict[str, Any]) -> None:
    test_event = s3_message("x", "y")
    test_event["body"] = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET})
    env["s3"].put_object(Bucket=BUCKET, Key="elsewhere/file.txt", Body=b"hello")
    assert run_batch(env["pipeline"], [test_event, s3_message("ObjectCreated:Put", "elsewhere/file.txt")]) == []


def test_malformed_messages_and_unattributable_keys_fail_to_the_dlq(env: dict[str, Any]) -> None:
    junk = s3_message("x", "y")
    junk["body"] = "not json"
    bad_tenant = s3_message("ObjectCreated:Put", "tenants/Not A Tenant/file.txt")
    env["s3"].put_object(Bucket=BUCKET, Key="tenants/acme/ok.txt", Body=b"fine")
    ok = s3_message("ObjectCreated:Put", "tenants/acme/ok.txt")
    assert run_batch(env["pipeline"], [junk, ok, bad_tenant]) == [junk["messageId"], bad_tenant["messageId"]]


def test_object_deleted_before_ingestion_is_skipped(env: dict[str, Any]) -> None:
    key = "tenants/acme/gone.txt"
    assert run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)]) == []
    assert env["store"].count("acme") == 0


def test_source_keys_name_their_tenant() -> None:
    source = parse_source_key("tenants/acme/dir/file.pdf")
    assert (source.tenant, source.path, source.file_name) == ("acme", "dir/file.pdf", "file.pdf")
    assert source.document_id == document_id_for("tenants/acme/dir/file.pdf") != document_id_for("tenants/b/x")


def test_a_transient_failure_keeps_the_previous_version_searchable(env: dict[str, Any]) -> None:
    key = "tenants/acme/kept.txt"
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"Wombats dig burrows. " * 50)
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])
    before = env["store"].count("acme")

    class DownEmbedder:
        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            raise ConnectionError("embedding endpoint unreachable")

    pipeline = IngestPipeline(
        s3=env["s3"],
        registry=env["registry"],
        store=env["store"],
        embedder=DownEmbedder(),
        chunker=Chunker.for_embedding_model(120, 20),
    )
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"Wombats are marsupials. " * 50)
    message = s3_message("ObjectCreated:Put", key)
    ok = s3_message("ObjectCreated:Put", "tenants/acme/missing.txt")  # keeps the batch partial

    assert run_batch(pipeline, [message, ok]) == [message["messageId"]]
    record = env["registry"].get("acme", document_id_for(key))
    assert record.status == DocumentStatus.FAILED and "will retry" in record.reason
    assert env["store"].count("acme") == before == record.chunks


def test_long_documents_report_their_progress(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from strata.ingest import pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "PROGRESS_EVERY_CHUNKS", 4)
    seen: list[int] = []
    registry = env["registry"]
    original = registry.mark_progress
    monkeypatch.setattr(
        registry, "mark_progress", lambda source, percent: (seen.append(percent), original(source, percent))
    )
    key = "tenants/acme/long.txt"
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=(DATASET / "s08_set1_a1_kangaroo.txt").read_bytes())

    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])

    assert len(seen) > 3 and seen == sorted(seen) and seen[-1] == 100


def test_a_removal_that_overtakes_an_ingestion_wins(env: dict[str, Any]) -> None:
    """With concurrent invocations, ObjectRemoved can finish while ObjectCreated is embedding."""
    key = "tenants/acme/raced.txt"
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"Echidnas lay eggs. " * 40)
    source = parse_source_key(key)
    pipeline = env["pipeline"]

    class RemovalDuringEmbedding(HashingEmbedder):
        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            pipeline.remove(source)  # the concurrent removal lands here
            return super().embed(texts)

    racing = IngestPipeline(
        s3=env["s3"],
        registry=env["registry"],
        store=env["store"],
        embedder=RemovalDuringEmbedding(),
        chunker=Chunker.for_embedding_model(120, 20),
    )
    assert run_batch(racing, [s3_message("ObjectCreated:Put", key)]) == []

    assert env["registry"].find("acme", source.document_id) is None
    assert env["store"].count("acme") == 0
