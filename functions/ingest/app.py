"""Ingest: SQS batches of S3 events → parse, chunk, embed, index; partial batch failures."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from strata.config import get_settings
from strata.ingest import IngestPipeline, build_ingest_pipeline, handle_sqs_record
from strata.observability import function_logger, with_lambda_context

logger = function_logger("strata-ingest")
processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache
def _pipeline() -> IngestPipeline:
    return build_ingest_pipeline(get_settings())


def record_handler(record: SQSRecord) -> None:
    handle_sqs_record(record, _pipeline())


@with_lambda_context(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
