"""S3 object events → the vector store and the document registry.

Created: download → parse → chunk → embed → replace the document's chunks → mark indexed.
Removed: delete the document's chunks and its registry entry.
A document that cannot be ingested is marked failed with its reason and the error is raised,
so the SQS message is retried and ends in the DLQ after the receive limit: nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from strata.documents import TENANT_PREFIX, DocumentRegistry, SourceKey, parse_source_key
from strata.ingest.chunking import Chunker, TextChunk
from strata.ingest.exceptions import DocumentError, UnreadableDocumentError, UnsupportedDocumentError
from strata.ingest.parsing import parse_document
from strata.retrieval import ChunkRecord, VectorStore

logger = logging.getLogger(__name__)

PROGRESS_EVERY_CHUNKS = 256


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> list[list[float]]: ...


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object about to be ingested: read the body only once its size is known to fit."""

    body: Any
    size: int
    content_type: str | None
    etag: str


@dataclass(frozen=True, slots=True)
class IngestResult:
    document_id: str
    chunks: int


def chunk_records(
    source: SourceKey, title: str, chunks: Sequence[TextChunk], vectors: Sequence[list[float]]
) -> list[ChunkRecord]:
    """What the vector store keeps of each chunk: its text, vector, and where it came from."""
    return [
        ChunkRecord(
            tenant=source.tenant,
            document_id=source.document_id,
            chunk_index=chunk.index,
            text=chunk.text,
            vector=vector,
            source_key=source.key,
            title=title,
            page=chunk.page,
            char_start=chunk.char_start,
            char_end=chunk.char_end,
        )
        for chunk, vector in zip(chunks, vectors, strict=True)
    ]


class IngestPipeline:
    def __init__(
        self,
        *,
        s3: Any,
        registry: DocumentRegistry,
        store: VectorStore,
        chunker: Chunker,
        embedder: Embedder,
        tenant_prefix: str = TENANT_PREFIX,
        max_document_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        self._s3 = s3
        self._registry = registry
        self._store = store
        self._chunker = chunker
        self._embedder = embedder
        self._tenant_prefix = tenant_prefix
        self._max_document_bytes = max_document_bytes

    def apply(self, record: S3EventRecord) -> None:
        """Apply one S3 event record (keys arrive URL-encoded, as S3 sends them)."""
        key = unquote_plus(record.s3.get_object.key)
        if not key.startswith(self._tenant_prefix):
            logger.warning("ignoring %s: outside the tenant prefix %s", key, self._tenant_prefix)
            return
        # Inside the prefix, a key we cannot attribute to a tenant is an error: it goes to the DLQ.
        source = parse_source_key(key, self._tenant_prefix)
        obj = record.s3.get_object
        sequencer = obj.get("sequencer")  # absent from some events (and from moto's)
        if self._registry.is_stale(source, sequencer):
            logger.info("skipping a stale %s event for %s", record.event_name, key)
            return
        if record.event_name.startswith("ObjectRemoved"):
            self.remove(source)
        elif record.event_name.startswith("ObjectCreated"):
            self.ingest(record.s3.bucket.name, source, sequencer=sequencer, size_bytes=obj.get("size"))

    def ingest(self, bucket: str, source: SourceKey, *, sequencer: str | None, size_bytes: int | None) -> IngestResult:
        self._registry.mark_indexing(source, sequencer=sequencer, size_bytes=size_bytes)
        stored: StoredObject | None = None
        try:
            stored = self._open(bucket, source)
            if stored is None:
                # Deleted since the event was sent: nothing to index, and nothing to list.
                self.remove(source)
                return IngestResult(source.document_id, 0)
            result = self._index(source, stored)
        except DocumentError as error:
            # Permanent: this version can never be indexed, so none of the document stays searchable.
            self._store.delete_document(source.tenant, source.document_id)
            self._fail(source, str(error), chunks=0, etag=stored.etag if stored else None)
            raise
        except Exception as error:
            # Transient or unknown: the previous version stays searchable while SQS retries.
            self._fail(source, f"ingestion failed, will retry: {type(error).__name__}: {error}")
            raise
        finally:
            if stored is not None:
                stored.body.close()
        if result.chunks:
            logger.info("indexed %s (%d chunks, %s)", source.key, result.chunks, source.document_id)
        return result

    def remove(self, source: SourceKey) -> None:
        removed = self._store.delete_document(source.tenant, source.document_id)
        self._registry.delete(source)
        logger.info("removed %s (%d chunks)", source.key, removed)

    def _index(self, source: SourceKey, stored: StoredObject) -> IngestResult:
        if stored.size > self._max_document_bytes:
            raise UnsupportedDocumentError(
                f"{source.file_name}: {stored.size} bytes is over the {self._max_document_bytes}-byte limit"
            )
        parsed = parse_document(stored.body.read(), key=source.key, content_type=stored.content_type)
        chunks = self._chunker.chunk(parsed)
        if not chunks:
            raise UnreadableDocumentError(f"{source.file_name}: no text to index")
        vectors = self._embed(source, [chunk.text for chunk in chunks])
        self._store.upsert(chunk_records(source, parsed.title, chunks, vectors))
        indexed = self._registry.mark_indexed(
            source, title=parsed.title, chunks=len(chunks), content_type=parsed.content_type, etag=stored.etag
        )
        if not indexed:
            self._store.delete_document(source.tenant, source.document_id)
            logger.info("%s was removed while it was being indexed; dropped its chunks", source.key)
            return IngestResult(source.document_id, 0)
        return IngestResult(source.document_id, len(chunks))

    def _embed(self, source: SourceKey, texts: list[str]) -> list[list[float]]:
        """Embed in slices, reporting progress on long documents (a megabyte is ~1,500 chunks)."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), PROGRESS_EVERY_CHUNKS):
            vectors.extend(self._embedder.embed(texts[start : start + PROGRESS_EVERY_CHUNKS]))
            if len(texts) > PROGRESS_EVERY_CHUNKS:
                percent = len(vectors) * 100 // len(texts)
                self._registry.mark_progress(source, percent)
                logger.info("embedding %s: %d/%d chunks (%d%%)", source.key, len(vectors), len(texts), percent)
        return vectors

    def _open(self, bucket: str, source: SourceKey) -> StoredObject | None:
        try:
            response = self._s3.get_object(Bucket=bucket, Key=source.key)
        except self._s3.exceptions.NoSuchKey:
            logger.info("%s was deleted before it could be ingested", source.key)
            return None
        return StoredObject(
            body=response["Body"],
            size=response["ContentLength"],
            content_type=response.get("ContentType"),
            etag=response["ETag"].strip('"'),
        )

    def _fail(self, source: SourceKey, reason: str, *, chunks: int | None = None, etag: str | None = None) -> None:
        logger.warning("failed %s: %s", source.key, reason)
        self._registry.mark_failed(source, reason, chunks=chunks, etag=etag)
