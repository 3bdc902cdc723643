from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class DocumentStatus(StrEnum):
    INDEXING = "indexing"
    INDEXED = "indexed"
    FAILED = "failed"


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
    updated_at: str
