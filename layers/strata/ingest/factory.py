from __future__ import annotations

from strata import aws
from strata.config import Settings
from strata.documents import DocumentRegistry
from strata.inference import SageMakerEmbedder
from strata.ingest.chunking import Chunker
from strata.ingest.pipeline import IngestPipeline
from strata.retrieval import OpenSearchVectorStore, build_vector_store


def build_ingest_pipeline(settings: Settings) -> IngestPipeline:
    store = build_vector_store(settings)
    if isinstance(store, OpenSearchVectorStore):
        # Idempotent, once per cold start: the first bulk write must not create the index with
        # a dynamic mapping (a plain float array instead of a knn_vector).
        store.ensure_index()
        store.ensure_search_pipeline()
    return IngestPipeline(
        s3=aws.client("s3", settings),
        registry=DocumentRegistry(aws.resource("dynamodb", settings).Table(settings.documents_table)),
        store=store,
        chunker=Chunker.for_embedding_model(settings.chunk_tokens, settings.chunk_overlap_tokens),
        embedder=SageMakerEmbedder(aws.client("sagemaker-runtime", settings), settings.embedding_endpoint),
        tenant_prefix=settings.tenant_prefix,
        max_document_bytes=settings.max_document_bytes,
    )
