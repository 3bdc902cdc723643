"""The ingest Lambda's record handler: one SQS message carries one S3 notification."""

from __future__ import annotations

import json
import logging

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from strata.ingest.pipeline import IngestPipeline

logger = logging.getLogger(__name__)

S3_TEST_EVENT = "s3:TestEvent"


def handle_sqs_record(record: SQSRecord, pipeline: IngestPipeline) -> None:
    """Raise to fail the record: BatchProcessor reports it and SQS redelivers it."""
    body = json.loads(record.body)
    if body.get("Event") == S3_TEST_EVENT:
        return
    for s3_record in S3Event(body).records:
        pipeline.apply(s3_record)
