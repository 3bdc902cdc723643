"""Brings the index back in line with the bucket when the local stack starts.

moto keeps its queue in memory, so events in flight when the stack stopped (or crashed between
two state snapshots) are gone. At start, every object whose current version is not yet indexed
(or found unreadable) gets an ``ObjectCreated`` event again, and every registered document whose
object is gone gets an ``ObjectRemoved``; the ingest pipeline does the rest, idempotently.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from strata.documents import (
    UNATTRIBUTED_TENANT,
    DocumentRecord,
    DocumentRegistry,
    DocumentStatus,
    parse_source_key,
)

logger = logging.getLogger(__name__)

SETTLED = (DocumentStatus.INDEXED, DocumentStatus.FAILED)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    created: list[str]
    removed: list[str]


def reconcile(
    *, s3: Any, sqs: Any, queue_url: str, bucket: str, registry: DocumentRegistry, prefix: str, region: str
) -> Reconciliation:
    # Objects of no tenant are recorded for operators but never indexed: nothing to reconcile.
    records = {(r.tenant, r.document_id): r for r in registry.scan() if r.tenant != UNATTRIBUTED_TENANT}
    created: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            try:
                source = parse_source_key(obj["Key"], prefix)
            except ValueError:
                continue  # the pipeline fails such keys to the DLQ; nothing to reconcile
            record = records.pop((source.tenant, source.document_id), None)
            if not _is_current(record, obj["ETag"].strip('"')):
                created.append(obj["Key"])
    removed = [record.source_key for record in records.values()]
    for key in created:
        _send(sqs, queue_url, _event("ObjectCreated:Put", bucket, key, region))
    for key in removed:
        _send(sqs, queue_url, _event("ObjectRemoved:Delete", bucket, key, region))
    if created or removed:
        logger.info("re-queued %d documents to ingest and %d to remove", len(created), len(removed))
    return Reconciliation(created=created, removed=removed)


def _is_current(record: DocumentRecord | None, etag: str) -> bool:
    return record is not None and record.status in SETTLED and record.etag == etag


def _event(name: str, bucket: str, key: str, region: str) -> dict[str, Any]:
    """An S3 event notification as S3 sends it (the key URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventName": name,
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
            }
        ]
    }


def _send(sqs: Any, queue_url: str, event: dict[str, Any]) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
