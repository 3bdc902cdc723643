"""The OpenSearch adapter: k-NN (faiss HNSW, cosine) + BM25, hybrid through a search pipeline.

Request shapes (checked against the OpenSearch documentation):

* vector: a ``knn`` query with the tenant, document and metadata filters *inside* the ``knn`` clause,
  which is efficient filtering: faiss applies it during the graph search (exact search when the
  filtered set is small), so ``k`` hits come back even for a small tenant. A ``bool`` filter
  around the ``knn`` clause would post-filter and could return fewer than ``k``.
* keyword: ``bool`` with ``must: match`` on ``text`` and the same ``filter`` clauses.
* hybrid: a ``hybrid`` query ``[keyword, vector]`` (each sub-query carries its own filter, which
  works on every version that has hybrid search) sent with ``search_pipeline=<pipeline>``; the
  pipeline's ``normalization-processor`` does min-max normalization and a weighted arithmetic
  mean, see :mod:`strata.retrieval.hybrid`. ``size`` and the knn ``k`` are the candidate depth
  and the top ``k`` are kept here, which is what the local store computes.

* metadata: a chunk's ``metadata`` is kept in ``_source`` only (``enabled: false``: tenants'
  arbitrary keys never grow the mapping) and indexed as ``metadata_terms``, one keyword
  ``["key", "value"]`` (JSON) per pair, so an exact-match filter is one ``term`` clause.
* fusion: the pipeline's processor is ``HybridConfig.pipeline_processor()``, the one the local
  store's :func:`strata.retrieval.hybrid.fuse` mirrors (``min_max`` by default, ``rrf`` through
  the ``score-ranker-processor``, OpenSearch 2.19+).

The index needs OpenSearch 2.19 or later (faiss with ``cosinesimil``) and the neural-search
plugin (hybrid query, normalization processor), which Amazon OpenSearch Service ships.

Shapes checked in the OpenSearch documentation (docs.opensearch.org): "Efficient k-NN filtering"
(``knn.<field>.filter``, faiss HNSW 2.9+), the k-NN query's ``method_parameters.ef_search``
(2.16+, k-NN PR #1783), "Vector search settings" (``index.knn``,
``index.knn.algo_param.ef_search``), "Hybrid query" (``hybrid.queries``, at most 5),
"Normalization processor" (``normalization.technique: min_max``, ``combination.technique:
arithmetic_mean``, ``combination.parameters.weights``) and "Score ranker processor"
(``combination.technique: rrf``, ``combination.rank_constant``, default 60).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from strata.retrieval.base import DocumentKey, SearchRequest, VectorStore, check_dimension
from strata.retrieval.exceptions import (
    InvalidChunkError,
    InvalidQueryError,
    VectorStoreError,
    VectorStoreUnavailableError,
)
from strata.retrieval.hybrid import HybridConfig
from strata.retrieval.types import ChunkRecord, SearchHit, SearchMode

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

logger = logging.getLogger(__name__)

VECTOR_FIELD = "vector"
TEXT_FIELD = "text"
METADATA_TERMS_FIELD = "metadata_terms"
TEXT_ANALYZER = "strata_text"
BULK_BATCH_CHUNKS = 200
_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
_HIT_FIELDS = (
    "tenant", "document_id", "chunk_index", "text", "source_key", "title", "page", "char_start", "char_end",
    "heading_path", "metadata",
)  # fmt: skip


# Fields that indexes created by earlier versions of Strata lack.
_FIELDS_ADDED_LATER = ("heading_path", "metadata", METADATA_TERMS_FIELD)


@dataclass(frozen=True, slots=True)
class IndexConfig:
    """How the chunks index and the hybrid pipeline are built.

    Parameters
    ----------
    m, ef_construction
        HNSW graph parameters of the ``knn_vector`` field (fixed when the index is created).
    ef_search
        Candidates kept while walking the graph at query time: sent on every k-NN clause
        (``method_parameters``) and, on managed domains, as the index default.
    serverless
        OpenSearch Serverless (``aoss``): index settings it does not take are left out.
    """

    m: int = 16
    ef_construction: int = 128
    ef_search: int = 100
    serverless: bool = False

    def __post_init__(self) -> None:
        for name, value, low in (("m", self.m, 2), ("ef_construction", self.ef_construction, 2),
                                 ("ef_search", self.ef_search, 2)):  # fmt: skip
            if value < low:
                raise ValueError(f"{name} must be at least {low} (given {value})")


class OpenSearchVectorStore(VectorStore):
    """Vector store on an OpenSearch index (Amazon OpenSearch Service in the cloud).

    Parameters
    ----------
    client
        An ``opensearchpy.OpenSearch`` client (see :func:`client_for` for a SigV4-signed one).
    index
        The index holding every tenant's chunks; tenants are separated by a filter on ``tenant``.
    dimension
        The embedding dimension (384 for all-MiniLM-L6-v2).
    pipeline
        The search pipeline with the hybrid ``normalization-processor``.
    hybrid
        Hybrid fusion settings; :meth:`ensure_search_pipeline` writes the same weights.
    refresh
        Make writes visible to searches before returning (``wait_for`` on bulk requests).
    config
        HNSW parameters and the Serverless switch (:class:`IndexConfig`).
    """

    def __init__(
        self,
        client: OpenSearch,
        index: str,
        dimension: int,
        pipeline: str,
        *,
        hybrid: HybridConfig | None = None,
        refresh: bool = True,
        config: IndexConfig | None = None,
    ) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be positive (given {dimension})")
        self.client = client
        self.index = index
        self.dimension = dimension
        self.pipeline = pipeline
        self.hybrid = hybrid or HybridConfig()
        self.refresh = refresh
        self.config = config or IndexConfig()

    # -- setup --------------------------------------------------------------------------------

    def index_body(self) -> dict[str, Any]:
        """Settings and mappings of the chunks index."""
        index_settings: dict[str, Any] = {"knn": True}
        if not self.config.serverless:
            index_settings["knn.algo_param.ef_search"] = self.config.ef_search
        return {
            "settings": {
                "index": index_settings,
                "analysis": {
                    # Same reading of text as the local store: English stop words, Porter stems.
                    "filter": {"strata_english_stop": {"type": "stop", "stopwords": "_english_"}},
                    "analyzer": {
                        TEXT_ANALYZER: {
                            "type": "custom",
                            "tokenizer": "standard",
                            "filter": ["lowercase", "asciifolding", "strata_english_stop", "porter_stem"],
                        }
                    },
                },
            },
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "tenant": {"type": "keyword"},
                    "document_id": {"type": "keyword"},
                    "chunk_index": {"type": "integer"},
                    TEXT_FIELD: {"type": "text", "analyzer": TEXT_ANALYZER},
                    "source_key": {"type": "keyword"},
                    "title": {"type": "text"},
                    "page": {"type": "integer"},
                    "char_start": {"type": "integer", "index": False},
                    "char_end": {"type": "integer", "index": False},
                    "heading_path": {"type": "keyword", "index": False},
                    "metadata": {"type": "object", "enabled": False},
                    METADATA_TERMS_FIELD: {"type": "keyword"},
                    VECTOR_FIELD: {
                        "type": "knn_vector",
                        "dimension": self.dimension,
                        "method": {
                            "name": "hnsw",
                            "engine": "faiss",
                            "space_type": "cosinesimil",
                            "parameters": {"m": self.config.m, "ef_construction": self.config.ef_construction},
                        },
                    },
                },
            },
        }

    def pipeline_body(self) -> dict[str, Any]:
        """The search pipeline that turns a hybrid query's sub-scores into one score: the
        processor ``HybridConfig`` names, so both adapters fuse alike."""
        processor = self.hybrid.pipeline_processor()
        return {"description": f"Strata hybrid search ({self.hybrid.fusion})", "phase_results_processors": [processor]}

    def ensure_index(self) -> bool:
        """Create the index if it does not exist; returns whether it was created.

        An existing index gets the fields added since it was created (the mapping is strict, so
        a chunk with headings or metadata would be rejected otherwise); adding fields to a
        mapping is allowed and idempotent."""
        from opensearchpy.exceptions import RequestError

        with self._errors():
            if self.client.indices.exists(index=self.index):
                properties = self.index_body()["mappings"]["properties"]
                added = {name: properties[name] for name in _FIELDS_ADDED_LATER}
                self.client.indices.put_mapping(index=self.index, body={"properties": added})
                return False
            try:
                self.client.indices.create(index=self.index, body=self.index_body())
            except RequestError as exc:
                if exc.error == "resource_already_exists_exception":  # created by a concurrent caller
                    return False
                raise
        logger.info("created OpenSearch index %s", self.index)
        return True

    def ensure_search_pipeline(self) -> None:
        """Create or update the hybrid search pipeline (a PUT, so it is idempotent)."""
        with self._errors():
            self.client.search_pipeline.put(id=self.pipeline, body=self.pipeline_body())

    def bootstrap(self) -> bool:
        """Create the index if it is missing and write the search pipeline; safe to call on every
        cold start. Returns whether the index was created."""
        created = self.ensure_index()
        self.ensure_search_pipeline()
        return created

    # -- primitives ---------------------------------------------------------------------------

    def _replace_documents(self, documents: dict[DocumentKey, list[ChunkRecord]]) -> None:
        for (tenant, document_id), chunks in documents.items():
            check_dimension(len(chunks[0].vector), self.dimension, "the chunks' vectors", InvalidChunkError)
            # Chunk ids are derived from their position, so indexing overwrites the old version
            # in place and the document never disappears from search while it is replaced; the
            # old chunks the new version does not have are deleted afterwards.
            for batch_start in range(0, len(chunks), BULK_BATCH_CHUNKS):
                self._bulk_index(chunks[batch_start : batch_start + BULK_BATCH_CHUNKS])
            kept = [chunk.chunk_index for chunk in chunks]
            query = self._document_query(tenant, document_id, except_chunks=kept)
            with self._errors():
                self.client.delete_by_query(
                    index=self.index, body={"query": query}, refresh=self.refresh, conflicts="proceed"
                )

    def _delete_document(self, tenant: str, document_id: str) -> int:
        from opensearchpy.exceptions import NotFoundError

        query = self._document_query(tenant, document_id)
        with self._errors():
            try:
                response = self.client.delete_by_query(
                    index=self.index, body={"query": query}, refresh=self.refresh, conflicts="proceed"
                )
            except NotFoundError:
                return 0
        return int(response.get("deleted", 0))

    def _count(self, tenant: str) -> int:
        from opensearchpy.exceptions import NotFoundError

        with self._errors():
            try:
                response = self.client.count(index=self.index, body={"query": {"term": {"tenant": tenant}}})
            except NotFoundError:
                return 0
        return int(response["count"])

    def _search(self, request: SearchRequest) -> list[SearchHit]:
        if request.vector is not None:
            check_dimension(len(request.vector), self.dimension, "query_vector", InvalidQueryError)
        body, params = self.search_body(request)
        with self._errors():
            response = self.client.search(index=self.index, body=body, **params)
        hits = self._hits(response, request)
        if request.vector is not None and hits:
            hits = self._with_similarity(request, hits)
        return hits

    def _with_similarity(self, request: SearchRequest, hits: list[SearchHit]) -> list[SearchHit]:
        """The query's cosine to each hit. A k-NN score is ``(1 + cos) / 2``; a hybrid score is
        normalized, so the top hits' vectors are read back (one small request, k documents)."""
        if request.mode is SearchMode.VECTOR:
            return [hit.model_copy(update={"similarity": 2.0 * hit.score - 1.0}) for hit in hits]
        ids = [chunk_id(hit) for hit in hits]
        body = {"size": len(ids), "query": {"ids": {"values": ids}}, "_source": [VECTOR_FIELD]}
        with self._errors():
            vectors = self.client.search(index=self.index, body=body)
        by_id = {raw["_id"]: raw.get("_source", {}).get(VECTOR_FIELD) for raw in vectors["hits"]["hits"]}
        return [
            hit.model_copy(update={"similarity": _cosine(by_id[i], request.vector)}) if by_id.get(i) else hit
            for hit, i in zip(hits, ids, strict=True)
        ]

    # -- request bodies -----------------------------------------------------------------------

    def search_body(self, request: SearchRequest) -> tuple[dict[str, Any], dict[str, str]]:
        """The ``_search`` body and query parameters for a request."""
        filters = self._filters(request)
        if request.mode is SearchMode.KEYWORD:
            size, query, params = request.k, self._keyword_query(request, filters), {}
        elif request.mode is SearchMode.VECTOR:
            size, query, params = request.k, self._knn_query(request, filters, request.k), {}
        else:
            size = self.hybrid.depth(request.k)
            # The order matches the pipeline's weights: (keyword, vector).
            queries = [self._keyword_query(request, filters), self._knn_query(request, filters, size)]
            query, params = {"hybrid": {"queries": queries}}, {"search_pipeline": self.pipeline}
        body = {"size": size, "query": query, "_source": {"excludes": [VECTOR_FIELD, METADATA_TERMS_FIELD]}}
        return body, params

    @staticmethod
    def _filters(request: SearchRequest) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = [{"term": {"tenant": request.tenant}}]
        if request.document_ids is not None:
            filters.append({"terms": {"document_id": list(request.document_ids)}})
        # One term per pair: all of them must match (a bool filter is a conjunction).
        filters.extend({"term": {METADATA_TERMS_FIELD: metadata_term(k, v)}} for k, v in request.filters)
        return filters

    @staticmethod
    def _keyword_query(request: SearchRequest, filters: list[dict[str, Any]]) -> dict[str, Any]:
        # The extracted terms, not the raw text: the same words as the local store, and a
        # bounded number of clauses whatever the user typed.
        match = {"match": {TEXT_FIELD: {"query": " ".join(request.terms)}}}
        return {"bool": {"must": [match], "filter": filters}}

    def _knn_query(self, request: SearchRequest, filters: list[dict[str, Any]], k: int) -> dict[str, Any]:
        assert request.vector is not None
        knn = {
            "vector": list(request.vector),
            "k": k,
            "filter": {"bool": {"filter": filters}},
            "method_parameters": {"ef_search": max(self.config.ef_search, k)},
        }
        return {"knn": {VECTOR_FIELD: knn}}

    @staticmethod
    def _document_query(tenant: str, document_id: str, *, except_chunks: Sequence[int] = ()) -> dict[str, Any]:
        filters = [{"term": {"tenant": tenant}}, {"term": {"document_id": document_id}}]
        query: dict[str, Any] = {"bool": {"filter": filters}}
        if except_chunks:
            query["bool"]["must_not"] = [{"terms": {"chunk_index": list(except_chunks)}}]
        return query

    def _bulk_index(self, chunks: Sequence[ChunkRecord]) -> None:
        actions: list[dict[str, Any]] = []
        for chunk in chunks:
            actions.append({"index": {"_index": self.index, "_id": chunk_id(chunk)}})
            actions.append(document_source(chunk))
        params = {"refresh": "wait_for"} if self.refresh else {}
        with self._errors():
            # Sent to /{index}/_bulk, so IAM can scope the write to this one index.
            response = self.client.bulk(body=actions, index=self.index, **params)
        if response.get("errors"):
            failures = [item["index"] for item in response.get("items", []) if "error" in item.get("index", {})]
            first = failures[0]["error"] if failures else "unknown error"
            raise VectorStoreError(f"OpenSearch rejected {len(failures)} of {len(chunks)} chunks: {first}")

    # -- responses ----------------------------------------------------------------------------

    def _hits(self, response: dict[str, Any], request: SearchRequest) -> list[SearchHit]:
        hits = []
        for raw in response.get("hits", {}).get("hits", []):
            source = raw.get("_source", {})
            if source.get("tenant") != request.tenant:
                # Cannot happen with the filters above; never let it reach a prompt if it does.
                logger.error("dropped a hit of another tenant from index %s", self.index)
                continue
            fields = {f: source.get(f) for f in _HIT_FIELDS}
            # Chunks indexed before headings and metadata existed have neither.
            fields["heading_path"] = fields["heading_path"] or []
            fields["metadata"] = fields["metadata"] or {}
            hits.append(SearchHit(**fields, score=float(raw["_score"])))
            if len(hits) == request.k:
                break
        return hits

    @contextmanager
    def _errors(self) -> Iterator[None]:
        from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
        from opensearchpy.exceptions import TransportError

        try:
            yield
        except OpenSearchConnectionError as exc:  # includes timeouts
            raise VectorStoreUnavailableError(f"OpenSearch is unreachable: {exc}") from exc
        except TransportError as exc:
            if exc.status_code in _RETRYABLE_STATUS:
                raise VectorStoreUnavailableError(f"OpenSearch is overloaded ({exc.status_code}): {exc.error}") from exc
            raise VectorStoreError(f"OpenSearch rejected the request ({exc.status_code}): {exc.error}") from exc


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    # A few hits of a few hundred dimensions: plain Python, so that a function never loads numpy.
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return math.fsum(x * y for x, y in zip(a, b, strict=True)) / norms if norms else 0.0


def metadata_term(key: str, value: str) -> str:
    """The ``metadata_terms`` keyword of one metadata pair: JSON, so no key or value is ambiguous."""
    return json.dumps([key, value], ensure_ascii=False)


def document_source(chunk: ChunkRecord) -> dict[str, Any]:
    """The indexed document of a chunk: its fields, its vector and its metadata as terms."""
    source = chunk.model_dump(include=set(_HIT_FIELDS) | {VECTOR_FIELD})
    source[METADATA_TERMS_FIELD] = [metadata_term(k, v) for k, v in sorted(chunk.metadata.items())]
    return source


def chunk_id(chunk: ChunkRecord | SearchHit) -> str:
    """The ``_id`` of a chunk: a hash of (tenant, document, position), unambiguous and stable."""
    key = json.dumps([chunk.tenant, chunk.document_id, chunk.chunk_index], ensure_ascii=False)
    return hashlib.sha256(key.encode()).hexdigest()


def client_for(
    endpoint: str,
    region: str,
    *,
    credentials: Any = None,
    service: str = "es",
    timeout_s: float = 10.0,
    pool_maxsize: int = 10,
) -> OpenSearch:
    """An OpenSearch client that signs requests with SigV4.

    Parameters
    ----------
    endpoint
        The domain endpoint, with or without ``https://``.
    region
        The domain's AWS region.
    credentials
        botocore credentials; by default those of ``boto3.Session()`` (the Lambda role).
    service
        ``es`` for OpenSearch Service domains, ``aoss`` for OpenSearch Serverless.
    """
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    if service not in ("es", "aoss"):
        raise ValueError(f"service must be 'es' (OpenSearch Service) or 'aoss' (Serverless), not {service!r}")

    if credentials is None:
        import boto3

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise VectorStoreError("no AWS credentials found to sign OpenSearch requests")
    url = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if not url.hostname:
        raise ValueError(f"not an OpenSearch endpoint: {endpoint!r}")
    secure = url.scheme == "https"
    return OpenSearch(
        hosts=[{"host": url.hostname, "port": url.port or (443 if secure else 80)}],
        http_auth=AWSV4SignerAuth(credentials, region, service),
        use_ssl=secure,
        verify_certs=secure,
        connection_class=RequestsHttpConnection,
        timeout=timeout_s,
        max_retries=2,
        retry_on_timeout=True,
        pool_maxsize=pool_maxsize,
    )
