"""Ingestion: S3 object events → parse → chunk → embed → index, with the registry kept current."""

from strata.ingest.chunking import Chunker, TextChunk, embedding_tokenizer_path, load_embedding_tokenizer
from strata.ingest.exceptions import DocumentError, UnreadableDocumentError, UnsupportedDocumentError
from strata.ingest.factory import build_ingest_pipeline
from strata.ingest.handler import handle_sqs_record
from strata.ingest.parsing import (
    SUPPORTED_EXTENSIONS,
    Page,
    ParsedDocument,
    decode_text,
    detect_content_type,
    parse_document,
)
from strata.ingest.pipeline import Embedder, IngestPipeline, IngestResult

__all__ = (
    "SUPPORTED_EXTENSIONS",
    "Chunker",
    "DocumentError",
    "Embedder",
    "IngestPipeline",
    "IngestResult",
    "Page",
    "ParsedDocument",
    "TextChunk",
    "UnreadableDocumentError",
    "UnsupportedDocumentError",
    "build_ingest_pipeline",
    "decode_text",
    "detect_content_type",
    "embedding_tokenizer_path",
    "handle_sqs_record",
    "load_embedding_tokenizer",
    "parse_document",
)
