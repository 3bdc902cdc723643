"""The ingest function as Lambda runs it: SQS batches whose bodies are the S3 notifications moto
sends for real puts and deletes, answered with a partial batch response.

AWS is moto; the vector store is the embedded local one; a hashing embedder stands in for the
embedding endpoint (the handler's pipeline factory is the one thing replaced).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import requests
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from fastapi.testclient import TestClient
from moto import mock_aws

import functions.ingest.app as ingest_app
from functions.api.app import app as api_app
from strata.config import Settings, get_settings
from strata.documents import DocumentRegistry, DocumentStatus, document_id_for
from strata.ingest import Chunker, IngestPipeline, IngestQueues
from strata.ingest.handler import REASON_ATTRIBUTE
from strata.retrieval import LocalVectorStore
from strata.web import REQUEST_CONTEXT_HEADER
from strata_local.aws import create_buckets, create_queues, create_tables, enable_notifications
from strata_local.lambda_context import LocalLambdaContext
from strata_local.poller import sqs_event

BUCKET = "strata-documents"
REGION = "us-east-1"
TEXT = b"Kangaroos are marsupials. A joey grows in its mother's pouch. " * 20


class HashingEmbedder:
    """Deterministic bag-of-words vectors: the pipeline's plumbing needs no model."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = np.zeros(32, dtype=np.float32)
            for word in text.lower().split():
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % 32] += 1
            vectors.append((vector / (np.linalg.norm(vector) or 1)).tolist())
        return vectors


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        create_buckets(s3)
        queues = create_queues(sqs)
        enable_notifications(s3, queues.queue_arn)  # S3 → SQS, as the CDK app wires it
        create_tables(boto3.client("dynamodb", region_name=REGION))
        registry = DocumentRegistry(boto3.resource("dynamodb", region_name=REGION).Table("strata-documents"))
        store = LocalVectorStore(tmp_path / "vectors.db")
        pipeline = IngestPipeline(
            s3=s3,
            registry=registry,
            store=store,
            chunker=Chunker.for_embedding_model(60, 10),
            embedder=HashingEmbedder(),
            max_document_bytes=100_000,
        )
        monkeypatch.setattr(ingest_app, "_pipeline", lambda: pipeline)
        ingest_queues = IngestQueues(sqs=sqs, queue_url=queues.queue_url, dlq_url=queues.dlq_url)
        monkeypatch.setattr(ingest_app, "_queues", lambda: ingest_queues)
        env = {"s3": s3, "sqs": sqs, "queues": queues, "registry": registry, "store": store}
        drain(env)  # the s3:TestEvent S3 sends when the notification is configured
        yield env
        store.close()


def drain(env: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message waiting in the ingest queue, as Lambda's event source mapping receives them."""
    messages: list[dict[str, Any]] = []
    while (
        batch := env["sqs"]
        .receive_message(
            QueueUrl=env["queues"].queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        .get("Messages", [])
    ):
        messages.extend(batch)
    return messages


def invoke(env: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    event = sqs_event(messages, queue_arn=env["queues"].queue_arn, region=REGION)
    return ingest_app.handler(event, LocalLambdaContext("strata-ingest"))


def failures(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def raw_message(env: dict[str, Any], body: str) -> dict[str, Any]:
    env["sqs"].send_message(QueueUrl=env["queues"].queue_url, MessageBody=body)
    return drain(env)[0]


def test_a_created_object_is_indexed_and_registered(env: dict[str, Any]) -> None:
    key = "tenants/acme/zoo/kangaroo notes.txt"
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=TEXT)

    response = invoke(env, drain(env))

    assert response == {"batchItemFailures": []}
    record = env["registry"].get("acme", document_id_for(key))
    assert (record.status, record.source_key, record.title) == (DocumentStatus.INDEXED, key, "kangaroo notes")
    assert record.chunks == env["store"].count("acme") > 1


def test_a_removed_object_is_removed_from_the_index_and_the_registry(env: dict[str, Any]) -> None:
    key = "tenants/acme/a.md"
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"# A\n\n" + TEXT)
    invoke(env, drain(env))
    assert env["store"].count("acme") > 0

    env["s3"].delete_object(Bucket=BUCKET, Key=key)
    response = invoke(env, drain(env))

    assert response == {"batchItemFailures": []}
    assert env["store"].count("acme") == 0
    assert env["registry"].find("acme", document_id_for(key)) is None


def test_poison_records_are_parked_in_the_dlq_with_their_reason_while_the_rest_succeeds(env: dict[str, Any]) -> None:
    good, unsupported = "tenants/acme/good.txt", "tenants/acme/setup.exe"
    env["s3"].put_object(Bucket=BUCKET, Key=good, Body=TEXT)
    env["s3"].put_object(Bucket=BUCKET, Key=unsupported, Body=b"MZ\x90\x00")
    notifications = drain(env)
    not_json = raw_message(env, "this is not an S3 notification")
    no_tenant = raw_message(
        env,
        json.dumps(
            {
                "Records": [
                    {
                        "eventVersion": "2.1",
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": BUCKET}, "object": {"key": "tenants/Not+A+Tenant/x.txt", "size": 1}},
                    }
                ]
            }
        ),
    )

    response = invoke(env, [notifications[0], not_json, notifications[1], no_tenant])

    assert len(notifications) == 2
    assert failures(response) == [], "a permanent failure is not retried"
    assert env["registry"].get("acme", document_id_for(good)).status == DocumentStatus.INDEXED
    failed = env["registry"].get("acme", document_id_for(unsupported))
    assert failed.status == DocumentStatus.FAILED
    assert "cannot read" in failed.reason, "the owner sees why"
    parked = env["sqs"].receive_message(
        QueueUrl=env["queues"].dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    reasons = {m["Body"]: m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in parked}
    assert set(reasons) == {notifications[1]["Body"], not_json["Body"], no_tenant["Body"]}
    assert reasons[notifications[1]["Body"]] == failed.reason


def test_a_batch_that_fails_entirely_raises_so_lambda_retries_it(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    class DownEmbedder:
        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            raise ConnectionError("embedding endpoint unreachable")

    pipeline = ingest_app._pipeline()
    monkeypatch.setattr(pipeline, "_embedder", DownEmbedder())
    env["s3"].put_object(Bucket=BUCKET, Key="tenants/acme/a.txt", Body=TEXT)

    with pytest.raises(BatchProcessingError):
        invoke(env, drain(env))


def test_an_upload_and_a_deletion_through_the_api_reach_the_index(env: dict[str, Any]) -> None:
    headers = {
        REQUEST_CONTEXT_HEADER: json.dumps(
            {"authorizer": {"tenant": "acme", "key_id": "k", "scopes": "chat,documents:write"}}
        )
    }
    api_app.dependency_overrides[get_settings] = lambda: Settings(max_document_bytes=100_000)
    try:
        with TestClient(api_app, raise_server_exceptions=True) as client:
            granted = client.post("/v1/documents", json={"path": "zoo/kangaroo.txt"}, headers=headers).json()
            upload = granted["upload"]
            posted = requests.post(upload["url"], data=upload["fields"], files={"file": ("k.txt", TEXT)}, timeout=10)
            assert posted.status_code == 204
            assert failures(invoke(env, drain(env))) == []
            document = client.get(f"/v1/documents/{granted['document_id']}", headers=headers).json()
            assert (document["status"], document["source_key"]) == ("indexed", "tenants/acme/zoo/kangaroo.txt")
            assert env["store"].count("acme") == document["chunks"] > 0

            deleted = client.delete(f"/v1/documents/{granted['document_id']}", headers=headers).json()
            assert deleted["status"] == "deleting"
            assert failures(invoke(env, drain(env))) == []
            assert client.get(f"/v1/documents/{granted['document_id']}", headers=headers).status_code == 404
            assert client.get("/v1/documents", headers=headers).json()["data"] == []
            assert env["store"].count("acme") == 0
    finally:
        api_app.dependency_overrides.clear()
