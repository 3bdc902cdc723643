"""The ingest pipeline and its SQS record handler, with AWS faked by moto and a hashing embedder
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
from aws_lambda_powertools.utilities.data_classes import S3Event
from moto import mock_aws

from strata.documents import UNATTRIBUTED_TENANT, DocumentRegistry, DocumentStatus, document_id_for, parse_source_key
from strata.ingest import Chunker, ChunkStaging, IngestPipeline, IngestQueues, handle_sqs_record
from strata.ingest.handler import REASON_ATTRIBUTE
from strata.retrieval import LocalVectorStore, SearchMode
from strata_local.aws import create_buckets, create_queues, create_tables
from tests.support import DATASET

BUCKET = "strata-documents"
KANGAROO = DATASET / "documents" / "s08_set1_a1_kangaroo.txt"


class HashingEmbedder:
    """Deterministic bag-of-words vectors: enough for the pipeline's plumbing, no model needed."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        self.texts += len(texts)
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
        create_buckets(s3)
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        sqs = boto3.client("sqs", region_name="us-east-1")
        local = create_queues(sqs)
        queues = IngestQueues(sqs=sqs, queue_url=local.queue_url, dlq_url=local.dlq_url)
        registry = DocumentRegistry(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-documents"))
        store = LocalVectorStore(tmp_path / "vectors.db")
        embedder = HashingEmbedder()
        env = {"s3": s3, "sqs": sqs, "queues": queues, "registry": registry, "store": store, "embedder": embedder}
        env["pipeline"] = pipeline_with(env, embedder)
        yield env
        store.close()


def pipeline_with(env: dict[str, Any], embedder: Any, **options: Any) -> IngestPipeline:
    return IngestPipeline(
        s3=env["s3"],
        registry=env["registry"],
        store=env["store"],
        embedder=embedder,
        chunker=Chunker.for_embedding_model(120, 20),
        staging=ChunkStaging(env["s3"], BUCKET),
        continue_later=env["queues"].send_continuation,
        max_document_bytes=200_000,
        **options,
    )


def s3_message(event: str, key: str, *, etag: str | None = None, sequencer: str | None = None) -> dict[str, Any]:
    from urllib.parse import quote_plus

    obj: dict[str, Any] = {"key": quote_plus(key), "size": 1}
    if etag:
        obj["eTag"] = etag
    if sequencer:
        obj["sequencer"] = sequencer
    body = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": event,
                "awsRegion": "us-east-1",
                "s3": {"bucket": {"name": BUCKET}, "object": obj},
            }
        ]
    }
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "r",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:strata-ingest",
        "awsRegion": "us-east-1",
    }


def run_batch(
    pipeline: IngestPipeline, messages: list[dict[str, Any]], *, queues: IngestQueues | None = None, **kwargs: Any
) -> list[str]:
    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event={"Records": messages},
        record_handler=lambda record: handle_sqs_record(record, pipeline, queues=queues, **kwargs),
        processor=processor,
    )
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def put(env: dict[str, Any], key: str, body: bytes, **kwargs: Any) -> str:
    """Upload ``body``; returns its ETag, as S3 events carry it."""
    return env["s3"].put_object(Bucket=BUCKET, Key=key, Body=body, **kwargs)["ETag"].strip('"')


def queued(env: dict[str, Any], url: str) -> list[dict[str, Any]]:
    """Every message in a queue (as the event source mapping receives them), removed from it."""
    messages: list[dict[str, Any]] = []
    while (
        batch := env["sqs"]
        .receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"])
        .get("Messages", [])
    ):
        messages.extend(batch)
        env["sqs"].delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {
                name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"]}
                for name, value in m.get("MessageAttributes", {}).items()
            },
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:strata-ingest",
            "awsRegion": "us-east-1",
        }
        for m in messages
    ]


def chunk_ids(store: LocalVectorStore, tenant: str, text: str) -> list[tuple[str, int]]:
    hits = store.search(tenant=tenant, query_text=text, query_vector=None, k=100, mode=SearchMode.KEYWORD)
    return sorted((hit.document_id, hit.chunk_index) for hit in hits)


def dead_letters(env: dict[str, Any]) -> dict[str, str]:
    """The DLQ's messages: each S3 key (or raw body) → the reason it was parked with."""
    parked = {}
    for message in queued(env, env["queues"].dlq_url):
        reason = message["messageAttributes"].get(REASON_ATTRIBUTE, {}).get("stringValue", "")
        try:
            keys = [r["s3"]["object"]["key"] for r in json.loads(message["body"])["Records"]]
        except (ValueError, KeyError, TypeError):
            keys = [message["body"]]
        from urllib.parse import unquote_plus

        parked.update({unquote_plus(key): reason for key in keys})
    return parked


def test_created_object_is_chunked_embedded_and_indexed_with_its_source(env: dict[str, Any]) -> None:
    key = "tenants/acme/zoo/kangaroo notes.txt"
    put(env, key, KANGAROO.read_bytes())

    assert run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)]) == []

    record = env["registry"].get("acme", document_id_for(key))
    assert record.status == DocumentStatus.INDEXED
    assert record.chunks == env["store"].count("acme") > 5
    assert record.progress_percent == 100
    assert record.title and record.duration_s is not None
    hits = env["store"].search(
        tenant="acme", query_text="kangaroo joey pouch", query_vector=None, k=3, mode=SearchMode.KEYWORD
    )
    assert hits and all(hit.source_key == key for hit in hits)
    assert env["store"].count("other") == 0


def test_keys_are_decoded_exactly_as_s3_encodes_them(env: dict[str, Any]) -> None:
    key = "tenants/acme/notes/a b+c%20d é 100%.txt"
    put(env, key, b"Platypuses lay eggs.")

    assert run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)]) == []

    assert env["registry"].get("acme", document_id_for(key)).source_key == key


def test_object_metadata_titles_the_document_and_travels_with_every_chunk(env: dict[str, Any]) -> None:
    key = "tenants/acme/q3.txt"
    metadata = {"title": "Q3 report", "language": "en", "team": "finance"}
    put(env, key, b"Revenue grew in the third quarter. " * 30, Metadata=metadata)

    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])

    assert env["registry"].get("acme", document_id_for(key)).title == "Q3 report"
    hits = env["store"].search(tenant="acme", query_text="revenue", query_vector=None, k=10, mode="keyword")
    assert hits and all(hit.metadata == metadata and hit.title == "Q3 report" for hit in hits)
    filtered = env["store"].search(
        tenant="acme", query_text="revenue", query_vector=None, k=10, mode="keyword", filters={"team": "legal"}
    )
    assert filtered == []


def test_markdown_headings_become_each_chunks_heading_path(env: dict[str, Any]) -> None:
    key = "tenants/acme/guide.md"
    body = "# Guide\n\nIntro text.\n\n## Install\n\n" + "Run the installer and wait. " * 40
    put(env, key, body.encode())

    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])

    hits = env["store"].search(tenant="acme", query_text="installer", query_vector=None, k=10, mode="keyword")
    assert hits and all(hit.heading_path == ["Guide", "Install"] for hit in hits)


def test_reupload_replaces_and_removal_deletes_the_documents_chunks(env: dict[str, Any]) -> None:
    key = "tenants/acme/a.md"
    put(env, key, b"# A\n\n" + b"kangaroos hop. " * 400)
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])
    first = env["store"].count("acme")
    put(env, key, b"# A\n\nshort now.")
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])
    assert env["store"].count("acme") == 1 < first

    env["s3"].delete_object(Bucket=BUCKET, Key=key)
    assert run_batch(env["pipeline"], [s3_message("ObjectRemoved:Delete", key)]) == []
    assert env["store"].count("acme") == 0
    assert env["registry"].find("acme", document_id_for(key)) is None


def test_a_duplicated_or_redelivered_event_changes_nothing(env: dict[str, Any]) -> None:
    key = "tenants/acme/once.txt"
    etag = put(env, key, b"Koalas sleep most of the day. " * 20)
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key, etag=etag)])
    before = env["registry"].get("acme", document_id_for(key))
    embedded = env["embedder"].texts

    assert run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key, etag=etag)] * 2) == []

    assert env["embedder"].texts == embedded
    assert env["registry"].get("acme", document_id_for(key)) == before


def test_an_older_event_never_overwrites_a_newer_version(env: dict[str, Any]) -> None:
    key = "tenants/acme/versioned.txt"
    put(env, key, b"Version two: emus run fast.")
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key, etag="v2", sequencer="0B")])
    embedded = env["embedder"].texts

    assert run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key, etag="v1", sequencer="0A")]) == []
    assert run_batch(env["pipeline"], [s3_message("ObjectRemoved:Delete", key, sequencer="0A")]) == []

    record = env["registry"].get("acme", document_id_for(key))
    assert (record.sequencer, record.status) == ("0B", DocumentStatus.INDEXED)
    assert env["embedder"].texts == embedded and env["store"].count("acme") == 1


def test_permanent_failures_are_parked_in_the_dlq_at_once_with_their_reason(env: dict[str, Any]) -> None:
    good, corrupt, unsupported, too_big, empty = (
        "tenants/acme/good.txt",
        "tenants/acme/bad.pdf",
        "tenants/acme/x.exe",
        "tenants/acme/big.txt",
        "tenants/acme/empty.md",
    )
    put(env, good, b"Quokkas live on Rottnest Island.")
    put(env, corrupt, b"%PDF-1.4 garbage")
    put(env, unsupported, b"MZ\x00\x01")
    put(env, too_big, b"a " * 150_000)
    put(env, empty, b"")
    messages = [s3_message("ObjectCreated:Put", k) for k in (corrupt, good, unsupported, too_big, empty)]

    assert run_batch(env["pipeline"], messages, queues=env["queues"]) == []  # none is retried

    assert env["registry"].get("acme", document_id_for(good)).status == DocumentStatus.INDEXED
    parked = dead_letters(env)
    assert set(parked) == {corrupt, unsupported, too_big, empty}
    for key in parked:
        record = env["registry"].get("acme", document_id_for(key))
        assert (record.status, record.attempts) == (DocumentStatus.FAILED, 1)
        assert record.reason and record.reason == parked[key]
    assert "limit" in parked[too_big] and "empty" in parked[empty]


def test_objects_of_no_tenant_and_malformed_messages_are_recorded_and_parked(env: dict[str, Any]) -> None:
    keys = ["tenants/x.txt", "tenants//x.txt", "tenants/Not A Tenant/file.txt", "elsewhere/file.txt"]
    junk = s3_message("x", "y")
    junk["body"] = "not json"
    test_event = s3_message("x", "y")
    test_event["body"] = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET})
    messages = [junk, test_event, *(s3_message("ObjectCreated:Put", key) for key in keys)]

    assert run_batch(env["pipeline"], messages, queues=env["queues"]) == []

    parked = dead_letters(env)
    assert set(parked) == {*keys, "not json"}
    assert "not JSON" in parked["not json"]
    recorded = {record.source_key: record for record in env["registry"].list(UNATTRIBUTED_TENANT)}
    assert set(recorded) == set(keys)
    assert all(record.status == DocumentStatus.FAILED and record.reason for record in recorded.values())


def test_control_characters_in_a_key_never_reach_a_log_line(env: dict[str, Any], caplog: Any) -> None:
    key = "tenants/acme/evil\x1b[2J\nFAKE LOG LINE.exe"
    put(env, key, b"MZ")

    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)], queues=env["queues"])

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "evil\\x1b[2J\\nFAKE" in logged
    assert "\x1b" not in logged and "\nFAKE" not in logged
    assert "\x1b" not in env["registry"].get("acme", document_id_for(key)).reason


def test_an_object_deleted_before_its_event_is_handled_is_removed_not_indexed(env: dict[str, Any]) -> None:
    key = "tenants/acme/gone.txt"
    put(env, key, b"Dingoes howl at night.")
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])
    assert env["store"].count("acme") == 1
    env["s3"].delete_object(Bucket=BUCKET, Key=key)
    embedded = env["embedder"].texts

    # A late Created event for the deleted object: nothing to index, and the old chunks go.
    assert run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)]) == []

    assert env["embedder"].texts == embedded
    assert env["store"].count("acme") == 0
    assert env["registry"].find("acme", document_id_for(key)) is None


def test_source_keys_name_their_tenant() -> None:
    source = parse_source_key("tenants/acme/dir/file.pdf")
    assert (source.tenant, source.path, source.file_name) == ("acme", "dir/file.pdf", "file.pdf")
    assert source.document_id == document_id_for("tenants/acme/dir/file.pdf") != document_id_for("tenants/b/x")


class DownEmbedder:
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise ConnectionError("embedding endpoint unreachable")


def test_a_transient_failure_is_retried_and_keeps_the_previous_version_searchable(env: dict[str, Any]) -> None:
    key = "tenants/acme/kept.txt"
    put(env, key, b"Wombats dig burrows. " * 50)
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])
    before = env["store"].count("acme")
    put(env, key, b"Wombats are marsupials. " * 50)
    message = s3_message("ObjectCreated:Put", key)
    missing = s3_message("ObjectCreated:Put", "tenants/acme/missing.txt")  # keeps the batch partial

    failed = run_batch(pipeline_with(env, DownEmbedder()), [message, missing], queues=env["queues"])

    assert failed == [message["messageId"]]
    record = env["registry"].get("acme", document_id_for(key))
    assert record.status == DocumentStatus.QUEUED and "attempt 1 of 3 failed, will retry" in record.reason
    assert env["store"].count("acme") == before == record.chunks
    assert dead_letters(env) == {}


def test_the_last_failed_attempt_says_the_event_is_in_the_dlq_not_that_it_will_retry(env: dict[str, Any]) -> None:
    key = "tenants/acme/doomed.txt"
    put(env, key, b"Bilbies burrow. " * 50)
    message = s3_message("ObjectCreated:Put", key)
    message["attributes"]["ApproximateReceiveCount"] = "3"
    missing = s3_message("ObjectCreated:Put", "tenants/acme/missing.txt")  # keeps the batch partial

    failed = run_batch(pipeline_with(env, DownEmbedder()), [message, missing], queues=env["queues"])

    assert failed == [message["messageId"]]
    record = env["registry"].get("acme", document_id_for(key))
    assert record.status == DocumentStatus.FAILED
    assert "after 3 attempts" in record.reason and "will retry" not in record.reason


class Clock:
    """Every reading is a second later: any deadline passes after the first batch."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def drain_continuations(env: dict[str, Any], pipeline: IngestPipeline, **kwargs: Any) -> int:
    """Handle continuations until none is left; returns how many parts that took."""
    parts = 0
    while messages := queued(env, env["queues"].queue_url):
        parts += len(messages)
        assert run_batch(pipeline, messages, queues=env["queues"], **kwargs) == []
    return parts


def test_a_long_document_is_ingested_in_parts_and_lands_whole(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from strata.ingest import pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "EMBED_BATCH_CHUNKS", 4)
    key = "tenants/acme/long.txt"
    put(env, key, b"Old version: the numbat eats termites.")
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])
    put(env, key, KANGAROO.read_bytes())
    pipeline = pipeline_with(env, env["embedder"], clock=Clock())

    assert run_batch(pipeline, [s3_message("ObjectCreated:Put", key)], queues=env["queues"], deadline=0.0) == []

    # Part 1 is done and the rest is queued: search still sees the old version, whole.
    record = env["registry"].get("acme", document_id_for(key))
    assert record.status == DocumentStatus.QUEUED and 0 < record.progress_percent < 100
    assert chunk_ids(env["store"], "acme", "numbat") == [(document_id_for(key), 0)]
    assert chunk_ids(env["store"], "acme", "kangaroo") == []

    parts = drain_continuations(env, pipeline, deadline=0.0)

    record = env["registry"].get("acme", document_id_for(key))
    assert record.status == DocumentStatus.INDEXED and record.progress_percent == 100
    assert parts + 1 == -(-record.chunks // 4)  # one batch of 4 chunks per part
    assert env["store"].count("acme") == record.chunks
    assert chunk_ids(env["store"], "acme", "numbat") == []
    assert env["embedder"].texts == 1 + record.chunks  # every chunk embedded once
    staged = env["s3"].list_objects_v2(Bucket=BUCKET, Prefix="ingest-staging/").get("KeyCount", 0)
    assert staged == 0


def test_a_newer_upload_supersedes_a_document_still_in_parts(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from strata.ingest import pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "EMBED_BATCH_CHUNKS", 4)
    key = "tenants/acme/racing.txt"
    put(env, key, KANGAROO.read_bytes())
    slow = pipeline_with(env, env["embedder"], clock=Clock())
    run_batch(slow, [s3_message("ObjectCreated:Put", key)], queues=env["queues"], deadline=0.0)
    continuation = queued(env, env["queues"].queue_url)
    assert len(continuation) == 1

    put(env, key, b"The new version is about the bilby.")
    run_batch(env["pipeline"], [s3_message("ObjectCreated:Put", key)])
    assert run_batch(slow, continuation, queues=env["queues"], deadline=0.0) == []

    assert queued(env, env["queues"].queue_url) == []  # the old run stopped
    assert chunk_ids(env["store"], "acme", "bilby") == [(document_id_for(key), 0)]
    assert env["store"].count("acme") == 1
    assert env["registry"].get("acme", document_id_for(key)).status == DocumentStatus.INDEXED
    assert env["s3"].list_objects_v2(Bucket=BUCKET, Prefix="ingest-staging/").get("KeyCount", 0) == 0


def test_a_tenant_can_have_its_own_chunk_size(env: dict[str, Any]) -> None:
    key = "tenants/acme/sized.txt"
    put(env, key, KANGAROO.read_bytes())
    default = pipeline_with(env, HashingEmbedder())
    small = pipeline_with(env, HashingEmbedder(), tenant_chunking=lambda tenant: (40, 0) if tenant == "acme" else None)

    run_batch(default, [s3_message("ObjectCreated:Put", key)])
    chunks_by_default = env["store"].count("acme")
    put(env, key, KANGAROO.read_bytes() + b" ")  # a new version, chunked the tenant's way
    run_batch(small, [s3_message("ObjectCreated:Put", key)])

    assert env["store"].count("acme") > 2 * chunks_by_default


def test_a_removal_that_overtakes_an_ingestion_wins(env: dict[str, Any]) -> None:
    """With concurrent invocations, ObjectRemoved can finish while ObjectCreated is embedding."""
    key = "tenants/acme/raced.txt"
    put(env, key, b"Echidnas lay eggs. " * 40)
    source = parse_source_key(key)
    pipeline = env["pipeline"]

    class RemovalDuringEmbedding(HashingEmbedder):
        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            pipeline.remove(source)  # the concurrent removal lands here
            return super().embed(texts)

    assert run_batch(pipeline_with(env, RemovalDuringEmbedding()), [s3_message("ObjectCreated:Put", key)]) == []

    assert env["registry"].find("acme", source.document_id) is None
    assert env["store"].count("acme") == 0


def test_a_run_overtaken_while_landing_leaves_the_newest_version_indexed(env: dict[str, Any]) -> None:
    """A newer run starts and lands between an older run's last check and its upsert."""
    key = "tenants/acme/overtaken.txt"
    put(env, key, b"The old text is about the wallaby.")
    store = env["store"]
    newer = env["pipeline"]

    class OvertakenStore:
        """The store, with the newer upload's whole run landing just before the first upsert."""

        overtaken = False

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def upsert(self, chunks: Any) -> None:
            if not self.overtaken:
                self.overtaken = True
                put(env, key, b"The new text is about the quokka.")
                newer.apply(S3Event(json.loads(s3_message("ObjectCreated:Put", key)["body"])).record)
            store.upsert(chunks)

    older = IngestPipeline(
        s3=env["s3"],
        registry=env["registry"],
        store=OvertakenStore(),  # type: ignore[arg-type]
        embedder=HashingEmbedder(),
        chunker=Chunker.for_embedding_model(120, 20),
    )

    assert run_batch(older, [s3_message("ObjectCreated:Put", key)]) == []

    assert chunk_ids(store, "acme", "quokka") == [(document_id_for(key), 0)]
    assert chunk_ids(store, "acme", "wallaby") == []
    assert env["registry"].get("acme", document_id_for(key)).status == DocumentStatus.INDEXED
