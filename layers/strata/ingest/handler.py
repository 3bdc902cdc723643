"""The ingest Lambda's record handler: one SQS message carries one S3 notification, or the
continuation of a long document (:mod:`strata.ingest.continuation`).

A permanent failure is parked in the DLQ at once, with its reason, and the message is then
reported as handled, so it is not retried behind other work. A transient failure raises: the
batch processor reports the message and SQS redelivers it, up to the queue's receive limit.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from strata.config import RESOURCES
from strata.documents import printable
from strata.ingest.continuation import Continuation
from strata.ingest.pipeline import Attempt, IngestPipeline, PermanentIngestError
from strata.observability.metrics import INGEST_SERVICE, IngestMetric, emit_metric

logger = logging.getLogger(__name__)

S3_TEST_EVENT = "s3:TestEvent"
REASON_ATTRIBUTE = "strata_reason"


@dataclass(frozen=True, slots=True)
class IngestQueues:
    """The ingest queue (continuations go to its back) and its DLQ (permanent failures)."""

    sqs: Any
    queue_url: str
    dlq_url: str

    def send_continuation(self, continuation: Continuation) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=continuation.message_body())

    def park(self, record: SQSRecord, reason: str) -> None:
        """The message, as it came, in the DLQ with its reason as a message attribute."""
        self.sqs.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=record.body,
            MessageAttributes={REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1000] or "permanent"}},
        )


def handle_sqs_record(
    record: SQSRecord,
    pipeline: IngestPipeline,
    *,
    queues: IngestQueues | None = None,
    deadline: float | None = None,
    max_receives: int = RESOURCES.ingest_queue.max_receive_count,
) -> None:
    """Raise to fail the record: BatchProcessor reports it and SQS redelivers it."""
    attempt = Attempt(number=int(record.attributes.approximate_receive_count or 1), of=max_receives)
    try:
        body = json.loads(record.body)
        if not isinstance(body, dict):
            raise PermanentIngestError("the message is not an S3 event or a continuation")
        if body.get("Event") == S3_TEST_EVENT:
            return
        continuation = Continuation.from_body(body)
        if continuation is not None:
            pipeline.resume(continuation, deadline=deadline, attempt=attempt)
            return
        if "Records" not in body:
            raise PermanentIngestError("the message is not an S3 event or a continuation")
        for s3_record in S3Event(body).records:
            result = pipeline.apply(s3_record, deadline=deadline, attempt=attempt)
            if result is not None and result.complete and result.chunks:
                _report_lag(s3_record)
    except json.JSONDecodeError as error:
        _park(record, queues, f"the message is not JSON: {error}")
    except PermanentIngestError as error:
        _park(record, queues, error.reason)


def _park(record: SQSRecord, queues: IngestQueues | None, reason: str) -> None:
    if queues is None:
        # No DLQ to park it in (a test, a tool): fail it, and the redrive policy will.
        raise PermanentIngestError(reason)
    queues.park(record, reason)
    logger.warning("parked message %s in the DLQ: %s", record.message_id, printable(reason))
    emit_metric(IngestMetric.FAILURES, 1, MetricUnit.Count, service=INGEST_SERVICE)


def _report_lag(record: S3EventRecord) -> None:
    """Seconds from the S3 event to its document searchable: what a user waits after an upload.
    A document ingested in parts lands from a continuation, which does not carry the event time,
    so only documents landed in one message are measured."""
    raw = record.get("eventTime")  # absent from hand-made events
    try:
        event_time = datetime.fromisoformat(raw).timestamp()
    except (TypeError, ValueError):
        return
    lag_s = max(0.0, time.time() - event_time)
    emit_metric(IngestMetric.LAG, lag_s, MetricUnit.Seconds, service=INGEST_SERVICE)
