"""The document registry: one DynamoDB item per document, keyed by tenant and document id."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key

from strata.documents.exceptions import DocumentNotFoundError
from strata.documents.keys import UNATTRIBUTED_TENANT, SourceKey, document_id_for, printable
from strata.documents.types import DocumentRecord, DocumentStatus

INTERRUPTED_REASON = "the previous attempt did not finish (the function timed out or crashed); retrying"


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class StartedRun:
    run_id: str
    superseded: str | None  # the run that had not finished, whose staged parts can go


def _decimals(values: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB numbers are Decimals: boto3 refuses a float."""
    return {name: Decimal(str(value)) if isinstance(value, float) else value for name, value in values.items()}


def is_older(sequencer: str | None, than: str | None) -> bool:
    """True when S3 event ``sequencer`` happened before ``than`` on the same key.

    Sequencers of equal length compare as strings; when either is missing or their lengths
    differ the event is not treated as stale, so a late event can cost a redundant re-index
    but never a lost update.
    """
    if not sequencer or not than or len(sequencer) != len(than):
        return False
    return sequencer < than


class DocumentRegistry:
    """Takes a boto3 DynamoDB Table (the documents table)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, tenant: str, document_id: str) -> DocumentRecord:
        item = self._table.get_item(Key={"tenant": tenant, "document_id": document_id}).get("Item")
        if not item:
            raise DocumentNotFoundError(f"no document {document_id!r}")
        return DocumentRecord.model_validate(item)

    def find(self, tenant: str, document_id: str) -> DocumentRecord | None:
        try:
            return self.get(tenant, document_id)
        except DocumentNotFoundError:
            return None

    def list(self, tenant: str) -> list[DocumentRecord]:
        return list(self._records(self._table.query, KeyConditionExpression=Key("tenant").eq(tenant)))

    def is_stale(self, source: SourceKey, sequencer: str | None) -> bool:
        """True when an event older than the last one applied to this key arrives late."""
        record = self.find(source.tenant, source.document_id)
        return record is not None and is_older(sequencer, record.sequencer)

    def owns(self, source: SourceKey, run_id: str) -> bool:
        """True while ``run_id`` is the document's current ingestion run (not superseded, not removed)."""
        record = self.find(source.tenant, source.document_id)
        return record is not None and record.run_id == run_id

    def mark_indexing(self, source: SourceKey, *, sequencer: str | None, size_bytes: int | None) -> StartedRun:
        """Start a run: it supersedes any run still going on this document (named in the result).

        If the last attempt never finished (the function timed out or crashed, so nothing
        recorded why), say so: should this attempt die too, the reason is on record."""
        run_id = uuid.uuid4().hex
        previous = self._table.update_item(
            Key={"tenant": source.tenant, "document_id": source.document_id},
            UpdateExpression=(
                "SET source_key = :key, title = if_not_exists(title, :title), #status = :status, "
                "progress_percent = :zero, sequencer = :seq, size_bytes = :size, updated_at = :now, "
                "started_at = :now, run_id = :run, "
                "attempts = if_not_exists(attempts, :zero) + :one, chunks = if_not_exists(chunks, :zero) "
                "REMOVE reason"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":key": source.key,
                ":title": source.file_name,
                ":status": DocumentStatus.PROCESSING.value,
                ":seq": sequencer,
                ":size": size_bytes,
                ":now": _now(),
                ":run": run_id,
                ":zero": 0,
                ":one": 1,
            },
            ReturnValues="ALL_OLD",
        ).get("Attributes", {})
        if previous.get("status") == DocumentStatus.PROCESSING.value:
            self._table.update_item(
                Key={"tenant": source.tenant, "document_id": source.document_id},
                UpdateExpression="SET reason = :reason",
                ExpressionAttributeValues={":reason": INTERRUPTED_REASON},
            )
        unfinished = previous.get("status") in (DocumentStatus.PROCESSING.value, DocumentStatus.QUEUED.value)
        return StartedRun(run_id, previous.get("run_id") if unfinished else None)

    def mark_progress(self, source: SourceKey, percent: int, *, queued: bool = False) -> None:
        """``queued``: the run waits in the queue for its next part."""
        status = DocumentStatus.QUEUED if queued else DocumentStatus.PROCESSING
        self._table.update_item(
            Key={"tenant": source.tenant, "document_id": source.document_id},
            UpdateExpression="SET progress_percent = :percent, #status = :status, updated_at = :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":percent": percent, ":status": status.value, ":now": _now()},
        )

    def mark_retrying(self, source: SourceKey, reason: str) -> None:
        """A transient failure: the event goes back to the queue and will be tried again."""
        self._table.update_item(
            Key={"tenant": source.tenant, "document_id": source.document_id},
            UpdateExpression="SET #status = :status, reason = :reason, updated_at = :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":status": DocumentStatus.QUEUED.value,
                ":reason": reason[:1000],
                ":now": _now(),
            },
        )

    def mark_indexed(
        self,
        source: SourceKey,
        *,
        title: str,
        chunks: int,
        content_type: str,
        etag: str,
        run_id: str | None = None,
        duration_s: float | None = None,
    ) -> bool:
        """False when the document was removed while it was being indexed (its ``ObjectRemoved``
        ran concurrently), or when ``run_id`` was superseded by a newer run: the item is left as
        it is, and the caller deals with what it indexed."""
        condition = "attribute_exists(document_id)"
        values: dict[str, Any] = {
            ":title": title,
            ":status": DocumentStatus.INDEXED.value,
            ":chunks": chunks,
            ":ctype": content_type,
            ":etag": etag,
            ":now": _now(),
            ":done": 100,
            ":duration": None if duration_s is None else round(duration_s, 3),
        }
        if run_id is not None:
            condition += " AND run_id = :run"
            values[":run"] = run_id
        try:
            self._table.update_item(
                Key={"tenant": source.tenant, "document_id": source.document_id},
                ConditionExpression=condition,
                UpdateExpression=(
                    "SET title = :title, #status = :status, chunks = :chunks, content_type = :ctype, "
                    "etag = :etag, updated_at = :now, progress_percent = :done, duration_s = :duration REMOVE reason"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_decimals(values),
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def mark_failed(
        self, source: SourceKey, reason: str, *, chunks: int | None = None, etag: str | None = None
    ) -> None:
        """``chunks``: how many chunks stay searchable (None keeps the previous count); ``etag``: the
        version that can never be indexed (a permanent failure), so it is not tried again at restart."""
        values: dict[str, Any] = {":status": DocumentStatus.FAILED.value, ":reason": reason[:1000], ":now": _now()}
        expression = "SET #status = :status, reason = :reason, updated_at = :now"
        if chunks is not None:
            expression += ", chunks = :chunks"
            values[":chunks"] = chunks
        if etag is not None:
            expression += ", etag = :etag"
            values[":etag"] = etag
        self._table.update_item(
            Key={"tenant": source.tenant, "document_id": source.document_id},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )

    def record_unattributed(self, key: str, reason: str) -> None:
        """An object that belongs to no tenant (``tenants/x.txt``, ``tenants//x``, a malformed
        tenant): listed under ``UNATTRIBUTED_TENANT`` for operators, with the reason."""
        self._table.put_item(
            Item={
                "tenant": UNATTRIBUTED_TENANT,
                "document_id": document_id_for(key),
                "source_key": printable(key, 1024),
                "title": printable(key.rsplit("/", 1)[-1] or key),
                "status": DocumentStatus.FAILED.value,
                "reason": reason[:1000],
                "chunks": 0,
                "updated_at": _now(),
            }
        )

    def mark_deleting(self, tenant: str, document_id: str) -> DocumentRecord | None:
        """Show a deletion in progress until the ``ObjectRemoved`` event removes the record.

        None when the record is already gone (the event was faster): it is not brought back.
        """
        try:
            item = self._table.update_item(
                Key={"tenant": tenant, "document_id": document_id},
                ConditionExpression="attribute_exists(document_id)",
                UpdateExpression="SET #status = :status, updated_at = :now",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":status": DocumentStatus.DELETING.value, ":now": _now()},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return None
        return DocumentRecord.model_validate(item)

    def scan(self) -> Iterator[DocumentRecord]:
        """Every document of every tenant (operations and the local stack's reconciliation)."""
        return self._records(self._table.scan)

    @staticmethod
    def _records(operation: Callable[..., dict[str, Any]], **kwargs: Any) -> Iterator[DocumentRecord]:
        """All pages of a Table ``query`` or ``scan`` (the resource API has no paginators)."""
        while True:
            page = operation(**kwargs)
            yield from (DocumentRecord.model_validate(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, source: SourceKey) -> None:
        self._table.delete_item(Key={"tenant": source.tenant, "document_id": source.document_id})
