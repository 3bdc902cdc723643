"""Retrieval: the vector-store port (upsert, delete, tenant-scoped search) and its adapters.

``build_vector_store(settings)`` picks the adapter: the embedded SQLite store locally, OpenSearch
in the cloud. Both rank the same data the same way (see :mod:`strata.retrieval.hybrid`).
"""

from strata.retrieval.base import MAX_K, VectorStore
from strata.retrieval.exceptions import (
    InvalidChunkError,
    InvalidQueryError,
    VectorStoreError,
    VectorStoreUnavailableError,
)
from strata.retrieval.factory import DEFAULT_EMBEDDING_DIMENSION, build_vector_store
from strata.retrieval.hybrid import WIKI_QA_TUNED, Fusion, HybridConfig
from strata.retrieval.keywords import fts5_match_expression, keyword_terms
from strata.retrieval.mmr import mmr_select
from strata.retrieval.opensearch import OpenSearchVectorStore, client_for
from strata.retrieval.query import is_follow_up, search_query
from strata.retrieval.rerank import HttpReranker, Reranker, RerankError, RerankUnavailableError
from strata.retrieval.retriever import QueryEmbedder, Retriever, build_retriever
from strata.retrieval.types import ChunkRecord, SearchHit, SearchMode


def __getattr__(name: str) -> object:
    # The embedded store pulls in numpy and faiss: loaded when asked for, never in a deployed function.
    if name == "LocalVectorStore":
        from strata.retrieval.local import LocalVectorStore

        return LocalVectorStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = (
    "DEFAULT_EMBEDDING_DIMENSION",
    "MAX_K",
    "ChunkRecord",
    "Fusion",
    "HttpReranker",
    "HybridConfig",
    "InvalidChunkError",
    "InvalidQueryError",
    "LocalVectorStore",
    "OpenSearchVectorStore",
    "QueryEmbedder",
    "RerankError",
    "RerankUnavailableError",
    "Reranker",
    "Retriever",
    "SearchHit",
    "SearchMode",
    "VectorStore",
    "VectorStoreError",
    "VectorStoreUnavailableError",
    "WIKI_QA_TUNED",
    "build_retriever",
    "build_vector_store",
    "client_for",
    "fts5_match_expression",
    "is_follow_up",
    "keyword_terms",
    "mmr_select",
    "search_query",
)
