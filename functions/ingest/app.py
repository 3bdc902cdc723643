"""Ingest: SQS batches of S3 events → parse, chunk, embed, index; partial batch failures."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from strata.config import get_settings
from strata.ingest import IngestPipeline, IngestQueues, build_ingest_pipeline, build_ingest_queues, handle_sqs_record
from strata.observability import function_logger, with_lambda_context

logger = function_logger("strata-ingest")
processor = BatchProcessor(event_type=EventType.SQS)
# Left for the last record of a batch to land its document and for the function to report.
DEADLINE_MARGIN_S = 60.0


@lru_cache
def _queues() -> IngestQueues:
    return build_ingest_queues(get_settings())


@lru_cache
def _pipeline() -> IngestPipeline:
    return build_ingest_pipeline(get_settings(), _queues())


def _deadline(context: Any) -> float:
    """When to hand the rest of a long document to a continuation (``time.monotonic()``)."""
    budget = get_settings().ingest_time_budget_s
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is not None:
        budget = min(budget, max(remaining_ms() / 1000 - DEADLINE_MARGIN_S, 1.0))
    return time.monotonic() + budget


@with_lambda_context(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deadline = _deadline(context)

    def record_handler(record: SQSRecord) -> None:
        handle_sqs_record(record, _pipeline(), queues=_queues(), deadline=deadline)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
