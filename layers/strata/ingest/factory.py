from __future__ import annotations

from strata import aws
from strata.auth import build_tenant_store
from strata.config import Settings
from strata.documents import DocumentRegistry
from strata.inference import SageMakerEmbedder
from strata.ingest.chunking import Chunker
from strata.ingest.continuation import ChunkStaging
from strata.ingest.handler import IngestQueues
from strata.ingest.pipeline import IngestPipeline
from strata.retrieval import OpenSearchVectorStore, build_vector_store


def build_ingest_queues(settings: Settings) -> IngestQueues:
    sqs = aws.client("sqs", settings)
    return IngestQueues(
        sqs=sqs,
        queue_url=sqs.get_queue_url(QueueName=settings.ingest_queue)["QueueUrl"],
        dlq_url=sqs.get_queue_url(QueueName=settings.ingest_dlq)["QueueUrl"],
    )


def build_ingest_pipeline(settings: Settings, queues: IngestQueues | None = None) -> IngestPipeline:
    store = build_vector_store(settings)
    if isinstance(store, OpenSearchVectorStore):
        # Idempotent, once per cold start: the first bulk write must not create the index with
        # a dynamic mapping (a plain float array instead of a knn_vector).
        store.ensure_index()
        store.ensure_search_pipeline()
    s3 = aws.client("s3", settings)
    tenants = build_tenant_store(settings)
    return IngestPipeline(
        s3=s3,
        registry=DocumentRegistry(aws.resource("dynamodb", settings).Table(settings.documents_table)),
        store=store,
        chunker=Chunker.for_embedding_model(settings.chunk_tokens, settings.chunk_overlap_tokens),
        embedder=SageMakerEmbedder(aws.client("sagemaker-runtime", settings), settings.embedding_endpoint),
        staging=ChunkStaging(s3, settings.documents_bucket),
        continue_later=queues.send_continuation if queues else None,
        tenant_chunking=tenants.get_chunking,
        tenant_prefix=settings.tenant_prefix,
        max_document_bytes=settings.max_document_bytes,
    )
