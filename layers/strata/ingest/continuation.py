"""A document too long for one invocation is ingested in parts.

The first part parses and chunks the document, embeds what its time budget allows and stages
the chunks and their vectors in S3; each later part (a continuation message on the ingest
queue) embeds the next chunks and stages them. The last part replaces the document's chunks in
the vector store in one ``upsert``, so search sees the old version until the new one is whole.
A continuation goes to the back of the queue, so other tenants' files are ingested between two
parts of a long one.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from strata.config import RESOURCES
from strata.documents import SourceKey
from strata.ingest.chunking import TextChunk

# The key in an ingest-queue message body that marks it as a continuation (S3 sends "Records").
CONTINUATION_FIELD = "strata_continuation"
STAGING_PREFIX = RESOURCES.documents_bucket.staging_prefix


@dataclass(frozen=True, slots=True)
class Continuation:
    """Where a run stands: the next chunk to embed and how many parts are staged."""

    bucket: str
    key: str
    run_id: str
    etag: str
    sequencer: str | None
    next_chunk: int
    parts: int

    def message_body(self) -> str:
        return json.dumps({CONTINUATION_FIELD: asdict(self)})

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Continuation | None:
        """The continuation a message body carries, or None for any other message."""
        fields = body.get(CONTINUATION_FIELD)
        return cls(**fields) if isinstance(fields, dict) else None


@dataclass(frozen=True, slots=True)
class StagedDocument:
    """What the first part learnt of the document, so that later parts need not parse it again."""

    title: str
    content_type: str
    metadata: dict[str, str]
    chunks: list[TextChunk]


class ChunkStaging:
    """Chunks and vectors of runs in progress, in S3 under ``ingest-staging/`` (outside the tenant
    prefix, so no ingest event fires). A run's objects are removed when it ends or is superseded."""

    def __init__(self, s3: Any, bucket: str, prefix: str = STAGING_PREFIX) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix

    def save_document(self, source: SourceKey, run_id: str, document: StagedDocument) -> None:
        payload = {
            "title": document.title,
            "content_type": document.content_type,
            "metadata": document.metadata,
            "chunks": [asdict(chunk) for chunk in document.chunks],
        }
        self._put(self._key(source, run_id, "chunks.json.gz"), gzip.compress(json.dumps(payload).encode()))

    def load_document(self, source: SourceKey, run_id: str) -> StagedDocument | None:
        data = self._get(self._key(source, run_id, "chunks.json.gz"))
        if data is None:
            return None
        payload = json.loads(gzip.decompress(data))
        chunks = [TextChunk(**{**chunk, "heading_path": tuple(chunk["heading_path"])}) for chunk in payload["chunks"]]
        return StagedDocument(payload["title"], payload["content_type"], payload["metadata"], chunks)

    def save_vectors(self, source: SourceKey, run_id: str, part: int, vectors: list[list[float]]) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
        self._put(self._key(source, run_id, f"part-{part:05d}.npy"), buffer.getvalue())

    def load_vectors(self, source: SourceKey, run_id: str, parts: int) -> list[list[float]] | None:
        """The vectors of parts ``0 .. parts - 1`` in order; None if one of them is missing."""
        vectors: list[list[float]] = []
        for part in range(parts):
            data = self._get(self._key(source, run_id, f"part-{part:05d}.npy"))
            if data is None:
                return None
            vectors.extend(np.load(io.BytesIO(data), allow_pickle=False).tolist())
        return vectors

    def clear(self, source: SourceKey, run_id: str | None = None) -> None:
        """Remove one run's staged objects, or every run's of the document (``run_id`` None)."""
        prefix = self._document_prefix(source) + (f"{run_id}/" if run_id else "")
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})

    def _document_prefix(self, source: SourceKey) -> str:
        return f"{self._prefix}{source.tenant}/{source.document_id}/"

    def _key(self, source: SourceKey, run_id: str, name: str) -> str:
        return f"{self._document_prefix(source)}{run_id}/{name}"

    def _put(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)

    def _get(self, key: str) -> bytes | None:
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
