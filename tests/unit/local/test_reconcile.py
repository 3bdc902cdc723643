from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from moto import mock_aws

from strata.documents import DocumentRegistry, parse_source_key
from strata_local.aws import create_buckets, create_queues, create_tables
from strata_local.reconcile import reconcile

BUCKET = "strata-documents"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3, sqs = boto3.client("s3", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        create_buckets(s3)
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        registry = DocumentRegistry(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-documents"))
        yield {"s3": s3, "sqs": sqs, "queue": create_queues(sqs).queue_url, "registry": registry}


def put(aws: dict[str, Any], key: str, body: bytes) -> str:
    return aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')


def queued(aws: dict[str, Any]) -> set[tuple[str, str]]:
    events = set()
    for message in aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10).get("Messages", []):
        record = json.loads(message["Body"])["Records"][0]
        events.add((record["eventName"], unquote_plus(record["s3"]["object"]["key"])))
    return events


def test_restart_requeues_what_the_lost_queue_held_and_nothing_else(aws: dict[str, Any]) -> None:
    registry = aws["registry"]
    current = parse_source_key("tenants/acme/current.txt")
    registry.mark_indexing(current, sequencer=None, size_bytes=1)
    registry.mark_indexed(current, title="t", chunks=1, content_type="text/plain", etag=put(aws, current.key, b"same"))
    unreadable = parse_source_key("tenants/acme/broken.pdf")
    registry.mark_indexing(unreadable, sequencer=None, size_bytes=1)
    registry.mark_failed(unreadable, "not a pdf", chunks=0, etag=put(aws, unreadable.key, b"junk"))
    changed = parse_source_key("tenants/acme/changed.txt")
    registry.mark_indexing(changed, sequencer=None, size_bytes=1)
    registry.mark_indexed(changed, title="t", chunks=1, content_type="text/plain", etag="an-older-version")
    put(aws, changed.key, b"new content")
    interrupted = parse_source_key("tenants/acme/interrupted.txt")
    registry.mark_indexing(interrupted, sequencer=None, size_bytes=1)
    put(aws, interrupted.key, b"x")
    put(aws, "tenants/acme/never-seen.txt", b"y")
    gone = parse_source_key("tenants/acme/gone.txt")
    registry.mark_indexing(gone, sequencer=None, size_bytes=1)

    result = reconcile(
        s3=aws["s3"],
        sqs=aws["sqs"],
        queue_url=aws["queue"],
        bucket=BUCKET,
        registry=registry,
        prefix="tenants/",
        region="us-east-1",
    )

    assert sorted(result.created) == [changed.key, interrupted.key, "tenants/acme/never-seen.txt"]
    assert result.removed == [gone.key]
    assert queued(aws) == {
        ("ObjectCreated:Put", changed.key),
        ("ObjectCreated:Put", interrupted.key),
        ("ObjectCreated:Put", "tenants/acme/never-seen.txt"),
        ("ObjectRemoved:Delete", gone.key),
    }
