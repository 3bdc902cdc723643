"""S3 object events → the vector store and the document registry, with exactly-once effect.

Created: open → parse → chunk → embed → replace the document's chunks → mark indexed.
Removed: delete the document's chunks and its registry entry.

- Each event's effect happens once per object version: a late event older than the last one
  applied (S3's ``sequencer``) and a redelivered or duplicated event of a version already
  indexed (same ETag) change nothing. Each ingestion is a *run* with an id in the registry; a
  newer event's run supersedes an older one, which then drops its work instead of landing it.
- A document whose chunks do not fit the invocation's time budget is ingested in parts
  (:mod:`strata.ingest.continuation`); search sees the old version until the new one is whole.
- Failures are classified: a permanent one (unsupported type, empty file, no text, an object of
  no tenant) raises :class:`PermanentIngestError` after recording its reason, and the handler
  parks the event in the DLQ at once; anything else is transient, recorded as queued for a
  retry (or failed on the last attempt) and raised, so SQS retries it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.header import decode_header, make_header
from typing import Any, Protocol
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from strata.documents import TENANT_PREFIX, DocumentRegistry, InvalidSourceKeyError, SourceKey, parse_source_key
from strata.documents.keys import printable
from strata.documents.registry import is_older
from strata.ingest.chunking import Chunker, TextChunk
from strata.ingest.continuation import ChunkStaging, Continuation, StagedDocument
from strata.ingest.exceptions import DocumentError, UnreadableDocumentError, UnsupportedDocumentError
from strata.ingest.parsing import max_bytes_for, parse_document
from strata.retrieval import ChunkRecord, VectorStore

logger = logging.getLogger(__name__)

EMBED_BATCH_CHUNKS = 64
MAX_REASON_CHARS = 900
MAX_METADATA_ENTRIES = 32
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> list[list[float]]: ...


class PermanentIngestError(Exception):
    """This event can never succeed: its reason is recorded and it belongs in the DLQ now."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Attempt:
    """Which receive of its message this is (SQS's ``ApproximateReceiveCount``) out of how many."""

    number: int = 1
    of: int = 1

    @property
    def last(self) -> bool:
        return self.number >= self.of


@dataclass(frozen=True, slots=True)
class IngestResult:
    document_id: str
    chunks: int
    complete: bool = True  # False: more parts are queued


@dataclass(slots=True)
class _Run:
    bucket: str
    source: SourceKey
    run_id: str
    etag: str
    sequencer: str | None
    started: float


def chunk_records(
    source: SourceKey,
    title: str,
    chunks: Sequence[TextChunk],
    vectors: Sequence[list[float]],
    metadata: dict[str, str] | None = None,
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
            heading_path=list(chunk.heading_path),
            metadata=metadata or {},
        )
        for chunk, vector in zip(chunks, vectors, strict=True)
    ]


def object_metadata(raw: dict[str, str] | None) -> dict[str, str]:
    """S3 user metadata (``x-amz-meta-*``, as boto3 returns it), bounded and decoded: non-ASCII
    values arrive RFC 2047-encoded (``=?UTF-8?B?…?=``)."""
    metadata: dict[str, str] = {}
    for key, value in sorted((raw or {}).items())[:MAX_METADATA_ENTRIES]:
        if value.startswith("=?"):
            with contextlib.suppress(ValueError, LookupError):
                value = str(make_header(decode_header(value)))
        metadata[printable(key.lower(), MAX_METADATA_KEY_CHARS)] = printable(value, MAX_METADATA_VALUE_CHARS)
    return metadata


class IngestPipeline:
    def __init__(
        self,
        *,
        s3: Any,
        registry: DocumentRegistry,
        store: VectorStore,
        chunker: Chunker,
        embedder: Embedder,
        staging: ChunkStaging | None = None,
        continue_later: Callable[[Continuation], None] | None = None,
        tenant_chunking: Callable[[str], tuple[int, int] | None] | None = None,
        tenant_prefix: str = TENANT_PREFIX,
        max_document_bytes: int = 50 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``staging`` and ``continue_later`` (which sends a continuation to the ingest queue)
        enable ingestion in parts; without them a document is always ingested in one go.
        ``tenant_chunking`` gives a tenant's ``(chunk_tokens, overlap_tokens)``, None for the default."""
        self._s3 = s3
        self._registry = registry
        self._store = store
        self._chunker = chunker
        self._chunkers: dict[tuple[int, int], Chunker] = {}
        self._embedder = embedder
        self._staging = staging
        self._continue_later = continue_later
        self._tenant_chunking = tenant_chunking
        self._tenant_prefix = tenant_prefix
        self._max_document_bytes = max_document_bytes
        self._clock = clock

    # --- events -----------------------------------------------------------------------------

    def apply(
        self, record: S3EventRecord, *, deadline: float | None = None, attempt: Attempt = Attempt()
    ) -> IngestResult | None:
        """Apply one S3 event record (keys arrive URL-encoded, as S3 sends them); the ingestion's
        result for a created object, None for a removal or an event that changed nothing.

        ``deadline``: the ``clock()`` time by which this invocation should hand the rest of a
        long document to a continuation; None for no budget.
        """
        key = unquote_plus(record.s3.get_object.key)
        source = self._source(key)
        obj = record.s3.get_object
        sequencer = obj.get("sequencer")  # absent from some events (and from moto's)
        known = self._registry.find(source.tenant, source.document_id)
        if known is not None and is_older(sequencer, known.sequencer):
            logger.info("skipping a stale %s event for %s", record.event_name, printable(key))
            return
        if record.event_name.startswith("ObjectRemoved"):
            self.remove(source)
        elif record.event_name.startswith("ObjectCreated"):
            etag = obj.get("eTag")
            if known is not None and known.has_indexed(etag, sequencer):
                logger.info("%s (ETag %s) is already indexed: a duplicate event", printable(key), etag)
                return
            return self.ingest(
                record.s3.bucket.name,
                source,
                sequencer=sequencer,
                size_bytes=obj.get("size"),
                deadline=deadline,
                attempt=attempt,
            )
        return None

    def ingest(
        self,
        bucket: str,
        source: SourceKey,
        *,
        sequencer: str | None,
        size_bytes: int | None,
        deadline: float | None = None,
        attempt: Attempt = Attempt(),
    ) -> IngestResult:
        run = self._registry.mark_indexing(source, sequencer=sequencer, size_bytes=size_bytes)
        if run.superseded and self._staging is not None:
            self._staging.clear(source, run.superseded)  # its parts can no longer land
        return self._guarded(source, attempt, lambda: self._first_part(bucket, source, run.run_id, sequencer, deadline))

    def resume(
        self, continuation: Continuation, *, deadline: float | None = None, attempt: Attempt = Attempt()
    ) -> None:
        """Ingest the next part of a long document, unless its run was superseded or removed."""
        source = self._source(continuation.key)
        if not self._registry.owns(source, continuation.run_id):
            logger.info("dropping a continuation of %s: a newer run or a removal superseded it", printable(source.key))
            if self._staging is not None:
                self._staging.clear(source, continuation.run_id)
            return
        run = _Run(
            continuation.bucket, source, continuation.run_id, continuation.etag, continuation.sequencer, self._clock()
        )
        self._guarded(source, attempt, lambda: self._next_part(run, continuation, deadline))

    def remove(self, source: SourceKey) -> None:
        removed = self._store.delete_document(source.tenant, source.document_id)
        self._registry.delete(source)
        if self._staging is not None:
            self._staging.clear(source)
        logger.info("removed %s (%d chunks)", printable(source.key), removed)

    # --- runs -------------------------------------------------------------------------------

    def _guarded(self, source: SourceKey, attempt: Attempt, work: Callable[[], IngestResult]) -> IngestResult:
        try:
            result = work()
        except DocumentError as error:
            # Permanent: this version can never be indexed, so none of the document stays searchable.
            reason = printable(str(error), MAX_REASON_CHARS)  # it names the file, which may hold anything
            self._store.delete_document(source.tenant, source.document_id)
            self._fail(source, reason, chunks=0, etag=error.etag)
            raise PermanentIngestError(reason) from error
        except Exception as error:
            # Transient or unknown: the previous version stays searchable while SQS retries.
            detail = printable(f"{type(error).__name__}: {error}", MAX_REASON_CHARS)
            if attempt.last:
                self._fail(
                    source, f"ingestion failed after {attempt.number} attempts (the event is in the DLQ): {detail}"
                )
            else:
                reason = f"attempt {attempt.number} of {attempt.of} failed, will retry: {detail}"
                logger.warning("%s: %s", printable(source.key), reason)
                self._registry.mark_retrying(source, reason)
            raise
        if result.complete and result.chunks:
            logger.info("indexed %s (%d chunks, %s)", printable(source.key), result.chunks, source.document_id)
        return result

    def _first_part(
        self, bucket: str, source: SourceKey, run_id: str, sequencer: str | None, deadline: float | None
    ) -> IngestResult:
        started = self._clock()
        response = self._open(bucket, source)
        if response is None:
            # Deleted since the event was sent: nothing to index, and nothing to list.
            self.remove(source)
            return IngestResult(source.document_id, 0)
        etag = response["ETag"].strip('"')
        try:
            document = self._read(source, response, etag)
        finally:
            response["Body"].close()
        run = _Run(bucket, source, run_id, etag, sequencer, started)
        return self._embed_and_land(run, document, done=0, deadline=deadline, parts=0)

    def _next_part(self, run: _Run, continuation: Continuation, deadline: float | None) -> IngestResult:
        staged = self._staging.load_document(run.source, run.run_id) if self._staging else None
        if staged is None:
            # The staged parts are gone (cleared by a newer run, or expired): start this version again.
            logger.warning("the staged parts of %s are missing; ingesting it from the start", printable(run.source.key))
            return self._first_part(run.bucket, run.source, run.run_id, run.sequencer, deadline)
        return self._embed_and_land(
            run, staged, done=continuation.next_chunk, deadline=deadline, parts=continuation.parts
        )

    def _read(self, source: SourceKey, response: dict[str, Any], etag: str) -> StagedDocument:
        size = response["ContentLength"]
        content_type = response.get("ContentType")
        limit = min(self._max_document_bytes, max_bytes_for(source.key, content_type))
        if size > limit:
            raise UnsupportedDocumentError(
                f"{printable(source.file_name)}: {size} bytes is over the {limit}-byte limit", etag=etag
            )
        try:
            parsed = parse_document(response["Body"].read(), key=source.key, content_type=content_type)
        except DocumentError as error:
            error.etag = etag
            raise
        chunks = self._chunker_for(source.tenant).chunk(parsed)
        if not chunks:
            raise UnreadableDocumentError(f"{printable(source.file_name)}: no text to index", etag=etag)
        metadata = object_metadata(response.get("Metadata"))
        title = metadata.get("title") or parsed.title
        return StagedDocument(title=title, content_type=parsed.content_type, metadata=metadata, chunks=chunks)

    def _embed_and_land(
        self, run: _Run, document: StagedDocument, *, done: int, deadline: float | None, parts: int
    ) -> IngestResult:
        """Embed the chunks from ``done`` on (the earlier ones are staged in ``parts``); land the
        document when all are embedded, else stage this part and continue in another message."""
        chunks = document.chunks
        vectors: list[list[float]] = []  # this invocation's, for chunks done, done + 1, ...
        while done + len(vectors) < len(chunks):
            # At least one batch per invocation, so that every part makes progress.
            out_of_time = deadline is not None and bool(vectors) and self._clock() >= deadline
            if out_of_time and self._can_continue():
                return self._continue(run, document, vectors, done, parts)
            start = done + len(vectors)
            batch = chunks[start : start + EMBED_BATCH_CHUNKS]
            vectors.extend(self._embedder.embed([chunk.text for chunk in batch]))
            if len(chunks) > EMBED_BATCH_CHUNKS:
                logger.info("embedding %s: %d/%d chunks", printable(run.source.key), done + len(vectors), len(chunks))
        if parts:
            staged = self._staging.load_vectors(run.source, run.run_id, parts) if self._staging else None
            if staged is None or len(staged) != done:
                logger.warning(
                    "the staged vectors of %s are missing; ingesting it from the start", printable(run.source.key)
                )
                return self._first_part(run.bucket, run.source, run.run_id, run.sequencer, deadline)
            vectors = staged + vectors
        return self._land(run, document, vectors)

    def _can_continue(self) -> bool:
        return self._staging is not None and self._continue_later is not None

    def _continue(
        self, run: _Run, document: StagedDocument, vectors: list[list[float]], done: int, parts: int
    ) -> IngestResult:
        assert self._staging is not None and self._continue_later is not None
        if parts == 0:
            self._staging.save_document(run.source, run.run_id, document)
        self._staging.save_vectors(run.source, run.run_id, parts, vectors)
        parts, done = parts + 1, done + len(vectors)
        percent = done * 100 // len(document.chunks)
        self._registry.mark_progress(run.source, percent, queued=True)
        self._continue_later(Continuation(run.bucket, run.source.key, run.run_id, run.etag, run.sequencer, done, parts))
        logger.info(
            "%s: %d/%d chunks (%d%%) embedded; the rest follows in part %d",
            printable(run.source.key),
            done,
            len(document.chunks),
            percent,
            parts + 1,
        )
        return IngestResult(run.source.document_id, done, complete=False)

    def _land(self, run: _Run, document: StagedDocument, vectors: list[list[float]]) -> IngestResult:
        source = run.source
        if not self._registry.owns(source, run.run_id):
            return self._superseded(run)
        self._store.upsert(chunk_records(source, document.title, document.chunks, vectors, document.metadata))
        indexed = self._registry.mark_indexed(
            source,
            title=document.title,
            chunks=len(document.chunks),
            content_type=document.content_type,
            etag=run.etag,
            run_id=run.run_id,
            duration_s=self._clock() - run.started,
        )
        if self._staging is not None:
            self._staging.clear(source, run.run_id)
        if indexed:
            return IngestResult(source.document_id, len(document.chunks))
        current = self._registry.find(source.tenant, source.document_id)
        if current is None:
            self._store.delete_document(source.tenant, source.document_id)
            logger.info("%s was removed while it was being indexed; dropped its chunks", printable(source.key))
            return IngestResult(source.document_id, 0)
        # A newer run started after our check and may have landed before our upsert: index the
        # object as it is now, so that the store ends with the newest version whatever the order.
        logger.info("%s was superseded while landing; indexing its current version again", printable(source.key))
        return self.ingest(run.bucket, source, sequencer=current.sequencer, size_bytes=current.size_bytes)

    def _superseded(self, run: _Run) -> IngestResult:
        logger.info("dropping a run of %s: a newer run or a removal superseded it", printable(run.source.key))
        if self._staging is not None:
            self._staging.clear(run.source, run.run_id)
        return IngestResult(run.source.document_id, 0)

    # --- helpers ----------------------------------------------------------------------------

    def _source(self, key: str) -> SourceKey:
        try:
            return parse_source_key(key, self._tenant_prefix)
        except InvalidSourceKeyError as error:
            reason = printable(
                f"{error} (objects belong under {self._tenant_prefix}{{tenant}}/{{file}})", MAX_REASON_CHARS
            )
            logger.warning("cannot ingest %s: %s", printable(key), reason)
            self._registry.record_unattributed(key, reason)
            raise PermanentIngestError(reason) from error

    def _chunker_for(self, tenant: str) -> Chunker:
        sizes = self._tenant_chunking(tenant) if self._tenant_chunking else None
        if sizes is None or sizes == (self._chunker.chunk_tokens, self._chunker.overlap_tokens):
            return self._chunker
        if sizes not in self._chunkers:
            self._chunkers[sizes] = self._chunker.resized(*sizes)
        return self._chunkers[sizes]

    def _open(self, bucket: str, source: SourceKey) -> dict[str, Any] | None:
        try:
            return self._s3.get_object(Bucket=bucket, Key=source.key)
        except self._s3.exceptions.NoSuchKey:
            logger.info("%s was deleted before it could be ingested", printable(source.key))
            return None

    def _fail(self, source: SourceKey, reason: str, *, chunks: int | None = None, etag: str | None = None) -> None:
        logger.warning("failed %s: %s", printable(source.key), reason)
        self._registry.mark_failed(source, reason, chunks=chunks, etag=etag)
