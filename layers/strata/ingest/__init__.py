"""Ingestion: S3 object events → parse → chunk → embed → index, with the registry kept current.

The names below are loaded on first use: the chat and api functions need only the chunker's
tokenizer, and a cold start must not pay for the parsers, the staging (numpy) and the pipeline.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "strata.ingest.chunking": ("Chunker", "TextChunk", "embedding_tokenizer_path", "load_embedding_tokenizer"),
    "strata.ingest.continuation": ("ChunkStaging", "Continuation"),
    "strata.ingest.exceptions": ("DocumentError", "UnreadableDocumentError", "UnsupportedDocumentError"),
    "strata.ingest.factory": ("build_ingest_pipeline", "build_ingest_queues"),
    "strata.ingest.handler": ("IngestQueues", "handle_sqs_record"),
    "strata.ingest.parsing": (
        "SUPPORTED_EXTENSIONS",
        "Page",
        "ParsedDocument",
        "Section",
        "decode_text",
        "detect_content_type",
        "max_bytes_for",
        "parse_document",
    ),
    "strata.ingest.pipeline": ("Attempt", "Embedder", "IngestPipeline", "IngestResult", "PermanentIngestError"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = tuple(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value
