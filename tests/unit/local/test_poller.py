"""The poller that stands in for Lambda's SQS event source mapping, against moto's SQS: what the
handler reports as failed comes back after the visibility timeout, the rest is deleted, and the
redrive policy moves a message that keeps failing to the DLQ."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws

from strata.config import RESOURCES
from strata_local.aws import create_queues
from strata_local.poller import SqsPoller

VISIBILITY_S = 1


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


class Handler:
    """Records the bodies it sees; fails those in ``failing`` (partially, or the whole batch)."""

    def __init__(self, failing: set[str] = frozenset(), *, raise_all: bool = False) -> None:
        self.failing = failing
        self.raise_all = raise_all
        self.seen: list[str] = []
        self.contexts: list[Any] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.contexts.append(context)
        records = event["Records"]
        self.seen.extend(record["body"] for record in records)
        failed = [record for record in records if record["body"] in self.failing]
        if self.raise_all and len(failed) == len(records):
            raise BatchProcessingError("all records failed", [])
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in failed]}


def poller(sqs: Any, handler: Handler) -> tuple[SqsPoller, Any]:
    queues = create_queues(sqs)
    return (
        SqsPoller(
            sqs=sqs,
            queue_url=queues.queue_url,
            queue_arn=queues.queue_arn,
            handler=handler,
            function_name="strata-ingest",
            visibility_timeout_s=VISIBILITY_S,
        ),
        queues,
    )


def depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_handled_messages_are_deleted_and_the_handler_gets_an_sqs_event(sqs: Any) -> None:
    handler = Handler()
    source, queues = poller(sqs, handler)
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=queues.queue_url, MessageBody=body)

    assert source.poll_once(wait_s=0) == 3

    assert sorted(handler.seen) == ["a", "b", "c"]
    assert handler.contexts[0].function_name == "strata-ingest"
    assert depth(sqs, queues.queue_url) == 0
    assert (source.processed, source.failed) == (3, 0)


def test_a_reported_failure_alone_comes_back_after_the_visibility_timeout(sqs: Any) -> None:
    handler = Handler(failing={"bad"})
    source, queues = poller(sqs, handler)
    for body in ("good", "bad"):
        sqs.send_message(QueueUrl=queues.queue_url, MessageBody=body)

    source.poll_once(wait_s=0)
    assert source.poll_once(wait_s=0) == 0, "invisible until the timeout"
    time.sleep(VISIBILITY_S + 0.2)
    assert source.poll_once(wait_s=0) == 1

    assert handler.seen.count("bad") == 2 and handler.seen.count("good") == 1


def test_a_message_that_keeps_failing_is_redriven_to_the_dlq(sqs: Any) -> None:
    handler = Handler(failing={"poison"}, raise_all=True)
    source, queues = poller(sqs, handler)
    sqs.send_message(QueueUrl=queues.queue_url, MessageBody="poison")
    max_receives = RESOURCES.ingest_queue.max_receive_count

    for _ in range(max_receives + 1):
        source.poll_once(wait_s=0)
        time.sleep(VISIBILITY_S + 0.2)

    assert handler.seen == ["poison"] * max_receives
    assert depth(sqs, queues.queue_url) == 0
    assert sqs.receive_message(QueueUrl=queues.dlq_url)["Messages"][0]["Body"] == "poison"


def test_a_handler_that_crashes_leaves_the_whole_batch_for_a_retry(sqs: Any) -> None:
    def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("the function crashed")

    queues = create_queues(sqs)
    source = SqsPoller(
        sqs=sqs,
        queue_url=queues.queue_url,
        queue_arn=queues.queue_arn,
        handler=crash,
        function_name="strata-ingest",
        visibility_timeout_s=VISIBILITY_S,
    )
    sqs.send_message(QueueUrl=queues.queue_url, MessageBody="x")

    source.poll_once(wait_s=0)

    assert source.failed == 1 and depth(sqs, queues.queue_url) == 1
