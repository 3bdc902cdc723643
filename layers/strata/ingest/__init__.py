"""Ingestion: S3 object events → parse → chunk → embed → index, with the registry kept current."""

from strata.ingest.chunking import Chunker, TextChunk, embedding_tokenizer_path, load_embedding_tokenizer
from strata.ingest.continuation import ChunkStaging, Continuation
from strata.ingest.exceptions import DocumentError, UnreadableDocumentError, UnsupportedDocumentError
from strata.ingest.factory import build_ingest_pipeline, build_ingest_queues
from strata.ingest.handler import IngestQueues, handle_sqs_record
from strata.ingest.parsing import (
    SUPPORTED_EXTENSIONS,
    Page,
    ParsedDocument,
    Section,
    decode_text,
    detect_content_type,
    max_bytes_for,
    parse_document,
)
from strata.ingest.pipeline import Attempt, Embedder, IngestPipeline, IngestResult, PermanentIngestError

__all__ = (
    "SUPPORTED_EXTENSIONS",
    "Attempt",
    "ChunkStaging",
    "Chunker",
    "Continuation",
    "DocumentError",
    "Embedder",
    "IngestPipeline",
    "IngestQueues",
    "IngestResult",
    "Page",
    "PermanentIngestError",
    "ParsedDocument",
    "Section",
    "TextChunk",
    "UnreadableDocumentError",
    "UnsupportedDocumentError",
    "build_ingest_pipeline",
    "build_ingest_queues",
    "decode_text",
    "detect_content_type",
    "embedding_tokenizer_path",
    "handle_sqs_record",
    "load_embedding_tokenizer",
    "max_bytes_for",
    "parse_document",
)
