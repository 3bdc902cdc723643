"""Build the vector store the settings name."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from strata.retrieval.exceptions import VectorStoreError
from strata.retrieval.local import LocalVectorStore
from strata.retrieval.opensearch import OpenSearchVectorStore, client_for

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

    from strata.config.settings import Settings
    from strata.retrieval.base import VectorStore
    from strata.retrieval.hybrid import HybridConfig

logger = logging.getLogger(__name__)

# all-MiniLM-L6-v2, the embedding model Strata ships with.
DEFAULT_EMBEDDING_DIMENSION = 384


def build_vector_store(
    settings: Settings,
    *,
    dimension: int = DEFAULT_EMBEDDING_DIMENSION,
    pipeline: str | None = None,
    client: OpenSearch | None = None,
    hybrid: HybridConfig | None = None,
) -> VectorStore:
    """The vector store for ``settings.vector_store``.

    ``local`` opens (or creates) the SQLite store at ``settings.vector_store_path``.
    ``opensearch`` builds a SigV4-signed client for ``settings.opensearch_endpoint`` (unless
    ``client`` is given) on ``settings.opensearch_index``, with the search pipeline
    ``pipeline`` (default ``<index>-hybrid``). It does not create the index or the pipeline:
    call ``ensure_index()`` and ``ensure_search_pipeline()`` once at deploy or start-up.
    """
    if settings.vector_store == "local":
        return LocalVectorStore(settings.vector_store_path, hybrid=hybrid)
    if client is None:
        if not settings.opensearch_endpoint:
            raise VectorStoreError("STRATA_OPENSEARCH_ENDPOINT must be set when STRATA_VECTOR_STORE is 'opensearch'")
        client = client_for(settings.opensearch_endpoint, settings.aws_region)
    index = settings.opensearch_index
    return OpenSearchVectorStore(client, index, dimension, pipeline or f"{index}-hybrid", hybrid=hybrid)
