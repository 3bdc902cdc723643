from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class DocumentStatus(StrEnum):
    """``queued → processing → indexed | failed``; ``deleting`` until the removal lands."""

    # Waiting in the queue: for its next part (a long document) or for a retry.
    QUEUED = "queued"
    PROCESSING = "processing"
    INDEXED = "indexed"
    # For good: this version can never be indexed, or every attempt failed (its event is in the DLQ).
    FAILED = "failed"
    # The object was deleted through the API; the ingest pipeline's ObjectRemoved handling
    # removes the chunks and then this record.
    DELETING = "deleting"


class DocumentRecord(BaseModel):
    """A document as its owner knows it (the S3 key and title) and where ingestion stands."""

    tenant: str
    document_id: str
    source_key: str
    title: str = ""
    status: DocumentStatus
    reason: str | None = None
    chunks: int = 0
    content_type: str | None = None
    size_bytes: int | None = None
    etag: str | None = None  # the object version last indexed, or found unreadable
    progress_percent: int = 0  # of the chunks embedded, while indexing a long document
    attempts: int = 0
    sequencer: str | None = None
    # The ingestion run that owns the document now: a newer event's run supersedes an older one.
    run_id: str | None = None
    # Seconds the last run spent, for the report and for operators.
    duration_s: float | None = None
    updated_at: str

    def has_indexed(self, etag: str | None, sequencer: str | None) -> bool:
        """True when this very version is already indexed: a redelivered or duplicated event."""
        return (
            self.status == DocumentStatus.INDEXED
            and etag is not None
            and self.etag == etag
            and (sequencer is None or self.sequencer in (None, sequencer))
        )


class UploadForm(BaseModel):
    """An HTML-form upload to S3: POST ``fields`` then the file (as the last field, ``file``) to ``url``."""

    model_config = ConfigDict(frozen=True)

    url: str
    fields: dict[str, str]
    method: Literal["POST"] = "POST"


class DocumentUpload(BaseModel):
    """A granted upload: where the document will live and how to put it there before ``expires_in``."""

    model_config = ConfigDict(frozen=True)

    document_id: str
    source_key: str
    content_type: str
    max_bytes: int
    upload: UploadForm
    expires_in: int
