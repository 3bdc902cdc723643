"""Build the vector store the settings name."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from strata.retrieval.exceptions import VectorStoreError
from strata.retrieval.hybrid import WIKI_QA_TUNED
from strata.retrieval.opensearch import IndexConfig, OpenSearchVectorStore, client_for

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

    from strata.config.settings import Settings
    from strata.retrieval.base import VectorStore
    from strata.retrieval.hybrid import HybridConfig

logger = logging.getLogger(__name__)

# all-MiniLM-L6-v2, the embedding model Strata ships with.
DEFAULT_EMBEDDING_DIMENSION = 384
# The embedded store fuses as tuned on wiki-qa's tuning half (z-score, 0.7/0.3, 100 candidates):
# on the held-out half it is the one setting above both BM25 and vector search on hit@5 and MRR
# (bench/RESULTS.md). OpenSearch keeps its own defaults (min-max): z-score normalization in its
# search pipeline needs OpenSearch 3.0; pass ``hybrid=WIKI_QA_TUNED`` on such a domain.
LOCAL_HYBRID = WIKI_QA_TUNED


def index_config(settings: Settings) -> IndexConfig:
    """The OpenSearch index and pipeline parameters the settings give."""
    return IndexConfig(
        m=settings.opensearch_knn_m,
        ef_construction=settings.opensearch_knn_ef_construction,
        ef_search=settings.opensearch_knn_ef_search,
        serverless=settings.opensearch_serverless,
    )


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
    ``opensearch`` builds a SigV4-signed client for ``settings.opensearch_endpoint`` (service
    ``aoss`` when ``settings.opensearch_serverless``, else ``es``) unless ``client`` is given,
    on ``settings.opensearch_index``, with the search pipeline ``pipeline`` (default
    ``<index>-hybrid``). It does not create the index or the pipeline: call ``bootstrap()``
    once at deploy or start-up.
    """
    if settings.vector_store == "local":
        # The embedded store (numpy, faiss) only locally: a deployed function never loads it.
        from strata.retrieval.local import LocalVectorStore

        return LocalVectorStore(settings.vector_store_path, hybrid=hybrid or LOCAL_HYBRID)
    config = index_config(settings)
    if client is None:
        if not settings.opensearch_endpoint:
            raise VectorStoreError("STRATA_OPENSEARCH_ENDPOINT must be set when STRATA_VECTOR_STORE is 'opensearch'")
        service = "aoss" if config.serverless else "es"
        client = client_for(settings.opensearch_endpoint, settings.aws_region, service=service)
    index = settings.opensearch_index
    return OpenSearchVectorStore(client, index, dimension, pipeline or f"{index}-hybrid", hybrid=hybrid, config=config)
