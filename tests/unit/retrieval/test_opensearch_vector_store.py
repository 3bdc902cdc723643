"""The OpenSearch adapter against a fake transport: a real ``OpenSearch`` client whose connection
records each HTTP request and answers from a script, so the bodies asserted here are exactly
what would go over the wire."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from botocore.credentials import Credentials
from opensearchpy import AWSV4SignerAuth, Connection, OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError

from strata.config import Settings
from strata.retrieval import (
    ChunkRecord,
    HybridConfig,
    InvalidChunkError,
    InvalidQueryError,
    LocalVectorStore,
    OpenSearchVectorStore,
    SearchHit,
    VectorStoreError,
    VectorStoreUnavailableError,
    build_vector_store,
    client_for,
)
from strata.retrieval.opensearch import IndexConfig, chunk_id
from tests.unit.retrieval.fake_opensearch import FakeCluster, fake_client

INDEX = "strata-chunks"
PIPELINE = "strata-chunks-hybrid"


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: Any


Reply = tuple[int, Any]


@dataclass
class FakeOpenSearch:
    """Scripted replies by ``(method, path)``; every request is recorded."""

    replies: dict[tuple[str, str], Reply | Callable[[Request], Reply] | Exception] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def answer(self, request: Request) -> Reply:
        reply = self.replies.get((request.method, request.path), (200, {}))
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply

    def only(self, method: str, path: str) -> Request:
        matching = [r for r in self.requests if (r.method, r.path) == (method, path)]
        assert len(matching) == 1, [(r.method, r.path) for r in self.requests]
        return matching[0]


class RecordingConnection(Connection):
    def __init__(self, *, fake: FakeOpenSearch, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fake = fake

    def perform_request(self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None):  # noqa: ANN001
        parts = urlsplit(url)
        # opensearch-py hands query parameters over already escaped to bytes.
        query = dict(parse_qsl(parts.query)) | {k: _text(v) for k, v in (params or {}).items()}
        request = Request(method, parts.path, query, _decode(body))
        self.fake.requests.append(request)
        status, payload = self.fake.answer(request)
        raw = json.dumps(payload)
        if not 200 <= status < 300 and status not in ignore:
            self._raise_error(status, raw, "application/json")
        return status, {"content-type": "application/json"}, raw


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(body: bytes | str | None) -> Any:
    if not body:
        return None
    text = body.decode() if isinstance(body, bytes) else body
    lines = [line for line in text.split("\n") if line]
    if len(lines) > 1:  # NDJSON (bulk)
        return [json.loads(line) for line in lines]
    return json.loads(text)


@pytest.fixture
def fake() -> FakeOpenSearch:
    return FakeOpenSearch()


@pytest.fixture
def store(fake: FakeOpenSearch) -> OpenSearchVectorStore:
    client = OpenSearch(
        hosts=[{"host": "search.test", "port": 443}], connection_class=RecordingConnection, fake=fake, max_retries=0
    )
    # min-max with equal weights, pinned: the expected bodies below are worked out for it.
    hybrid = HybridConfig(keyword_weight=0.5, vector_weight=0.5, candidates=20, fusion="min_max")
    return OpenSearchVectorStore(client, INDEX, dimension=3, pipeline=PIPELINE, hybrid=hybrid)


def chunk(document_id: str, index: int, text: str = "text", tenant: str = "acme") -> ChunkRecord:
    return ChunkRecord(
        tenant=tenant,
        document_id=document_id,
        chunk_index=index,
        text=text,
        vector=[1.0, 0.0, float(index)],
        source_key=f"tenants/{tenant}/{document_id}.pdf",
        title="Doc",
        page=index + 1,
        char_start=0,
        char_end=len(text),
    )


def search_reply(*sources: dict[str, Any], scores: list[float] | None = None) -> Reply:
    scores = scores or [1.0 - i / 10 for i in range(len(sources))]
    hits = [
        {"_index": INDEX, "_id": str(i), "_score": s, "_source": src}
        for i, (src, s) in enumerate(zip(sources, scores, strict=True))
    ]
    return 200, {"hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits}}


def source(document_id: str, index: int, tenant: str = "acme") -> dict[str, Any]:
    return chunk(document_id, index, f"chunk {index} of {document_id}", tenant).model_dump(exclude={"vector"})


def test_opensearch_ensure_index_creates_a_faiss_cosine_knn_index(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    fake.replies[("HEAD", f"/{INDEX}")] = (404, {})

    created = store.ensure_index()

    body = fake.only("PUT", f"/{INDEX}").body
    assert created is True
    assert body["settings"]["index"]["knn"] is True
    properties = body["mappings"]["properties"]
    assert properties["vector"] == {
        "type": "knn_vector",
        "dimension": 3,
        "method": {
            "name": "hnsw",
            "engine": "faiss",
            "space_type": "cosinesimil",
            "parameters": {"m": 16, "ef_construction": 128},
        },
    }
    assert properties["tenant"] == {"type": "keyword"}
    assert properties["document_id"] == {"type": "keyword"}
    assert properties["text"]["type"] == "text"
    analyzer = body["settings"]["analysis"]["analyzer"][properties["text"]["analyzer"]]
    assert analyzer["tokenizer"] == "standard"
    assert "porter_stem" in analyzer["filter"]


def test_opensearch_ensure_index_adds_the_new_fields_to_an_existing_index(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    fake.replies[("HEAD", f"/{INDEX}")] = (200, {})

    assert store.ensure_index() is False
    assert [(r.method, r.path) for r in fake.requests] == [("HEAD", f"/{INDEX}"), ("PUT", f"/{INDEX}/_mapping")]
    assert fake.requests[1].body == {
        "properties": {
            "heading_path": {"type": "keyword", "index": False},
            "metadata": {"type": "object", "enabled": False},
            "metadata_terms": {"type": "keyword"},
        }
    }


def test_opensearch_ensure_index_tolerates_a_concurrent_creation(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    fake.replies[("HEAD", f"/{INDEX}")] = (404, {})
    fake.replies[("PUT", f"/{INDEX}")] = (400, {"error": {"type": "resource_already_exists_exception"}, "status": 400})

    assert store.ensure_index() is False


def test_opensearch_ensure_search_pipeline_puts_the_normalization_processor(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    store.ensure_search_pipeline()

    body = fake.only("PUT", f"/_search/pipeline/{PIPELINE}").body
    assert body["phase_results_processors"] == [
        {
            "normalization-processor": {
                "normalization": {"technique": "min_max"},
                "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.5, 0.5]}},
            }
        }
    ]


def test_opensearch_vector_search_filters_inside_the_knn_clause(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    fake.replies[("POST", f"/{INDEX}/_search")] = search_reply(source("a", 0), source("b", 2), scores=[0.97, 0.81])

    hits = store.search(
        tenant="acme", query_text="ignored", query_vector=[1, 0, 0], k=2, mode="vector", document_ids=["a", "b"]
    )

    request = fake.only("POST", f"/{INDEX}/_search")
    assert "search_pipeline" not in request.params
    assert request.body == {
        "size": 2,
        "_source": {"excludes": ["vector", "metadata_terms"]},
        "query": {
            "knn": {
                "vector": {
                    "vector": [1.0, 0.0, 0.0],
                    "k": 2,
                    "filter": {
                        "bool": {"filter": [{"term": {"tenant": "acme"}}, {"terms": {"document_id": ["a", "b"]}}]}
                    },
                    "method_parameters": {"ef_search": 100},
                }
            }
        },
    }
    assert [hit.model_copy(update={"similarity": None}) for hit in hits] == [
        SearchHit(**source("a", 0), score=0.97),
        SearchHit(**source("b", 2), score=0.81),
    ]
    # A k-NN score is (1 + cos) / 2: the cosine comes back as the hit's similarity, with no request more.
    assert [hit.similarity for hit in hits] == pytest.approx([0.94, 0.62])


def test_opensearch_keyword_search_is_a_filtered_match_on_the_query_terms(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    fake.replies[("POST", f"/{INDEX}/_search")] = search_reply(source("a", 0))

    store.search(tenant="acme", query_text='The "refund" OR policy*', query_vector=None, k=4, mode="keyword")

    assert fake.only("POST", f"/{INDEX}/_search").body["query"] == {
        "bool": {
            "must": [{"match": {"text": {"query": "refund policy"}}}],
            "filter": [{"term": {"tenant": "acme"}}],
        }
    }


def test_opensearch_keyword_search_without_terms_sends_nothing(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    assert store.search(tenant="acme", query_text="the of", query_vector=None, k=4, mode="keyword") == []
    assert fake.requests == []


def test_opensearch_hybrid_search_uses_the_pipeline_and_keeps_the_top_k(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    vectors = {chunk_id(chunk("a", i, "")): [0.0, 1.0, 0.0] if i == 1 else [1.0, 0.0, 0.0] for i in range(6)}

    def reply(request: Request) -> Reply:
        if "ids" in request.body["query"]:  # the top hits' vectors, read back for their similarity
            wanted = request.body["query"]["ids"]["values"]
            return 200, {"hits": {"hits": [{"_id": i, "_source": {"vector": vectors[i]}} for i in wanted]}}
        return search_reply(*(source("a", i) for i in range(6)))

    fake.replies[("POST", f"/{INDEX}/_search")] = reply

    hits = store.search(tenant="acme", query_text="refund policy", query_vector=[0, 1, 0], k=3)

    request, read_back = [r for r in fake.requests if r.path == f"/{INDEX}/_search"]
    assert read_back.body == {
        "size": 3,
        "query": {"ids": {"values": [chunk_id(hit) for hit in hits]}},
        "_source": ["vector"],
    }
    # Hybrid scores are normalized per query; the similarity is the absolute cosine.
    assert [hit.similarity for hit in hits] == pytest.approx([0.0, 1.0, 0.0])
    tenant_filter = [{"term": {"tenant": "acme"}}]
    assert request.params["search_pipeline"] == PIPELINE
    assert request.body["size"] == 20  # the candidate depth, as the local store uses
    assert request.body["query"] == {
        "hybrid": {
            "queries": [
                {"bool": {"must": [{"match": {"text": {"query": "refund policy"}}}], "filter": tenant_filter}},
                {
                    "knn": {
                        "vector": {
                            "vector": [0.0, 1.0, 0.0],
                            "k": 20,
                            "filter": {"bool": {"filter": tenant_filter}},
                            "method_parameters": {"ef_search": 100},
                        }
                    }
                },
            ]
        }
    }
    assert [hit.chunk_index for hit in hits] == [0, 1, 2]


def test_opensearch_search_drops_hits_of_another_tenant(store: OpenSearchVectorStore, fake: FakeOpenSearch) -> None:
    fake.replies[("POST", f"/{INDEX}/_search")] = search_reply(source("a", 0, tenant="globex"), source("b", 0))

    hits = store.search(tenant="acme", query_text="x", query_vector=[1, 0, 0], k=5)

    assert [(hit.tenant, hit.document_id) for hit in hits] == [("acme", "b")]


def test_opensearch_search_checks_the_query_dimension(store: OpenSearchVectorStore, fake: FakeOpenSearch) -> None:
    with pytest.raises(InvalidQueryError, match="dimensions"):
        store.search(tenant="acme", query_text="x", query_vector=[1, 0], k=5)
    assert fake.requests == []


def test_opensearch_upsert_overwrites_by_position_then_drops_stale_chunks(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    fake.replies[("POST", f"/{INDEX}/_bulk")] = (200, {"errors": False, "items": []})
    fake.replies[("POST", f"/{INDEX}/_delete_by_query")] = (200, {"deleted": 3})

    store.upsert([chunk("doc", 1, "second"), chunk("doc", 0, "first")])

    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", f"/{INDEX}/_bulk"),
        ("POST", f"/{INDEX}/_delete_by_query"),
    ]
    bulk = fake.requests[0]
    assert bulk.params["refresh"] == "wait_for"
    # Every field of the chunk (heading_path and metadata included), plus the metadata as terms.
    assert bulk.body == [
        {"index": {"_index": INDEX, "_id": chunk_id(chunk("doc", 0))}},
        chunk("doc", 0, "first").model_dump() | {"metadata_terms": []},
        {"index": {"_index": INDEX, "_id": chunk_id(chunk("doc", 1))}},
        chunk("doc", 1, "second").model_dump() | {"metadata_terms": []},
    ]
    cleanup = fake.requests[1]
    assert (cleanup.params["refresh"], cleanup.params["conflicts"]) == ("true", "proceed")
    assert cleanup.body == {
        "query": {
            "bool": {
                "filter": [{"term": {"tenant": "acme"}}, {"term": {"document_id": "doc"}}],
                "must_not": [{"terms": {"chunk_index": [0, 1]}}],
            }
        }
    }


def test_opensearch_chunk_ids_are_stable_and_unambiguous() -> None:
    assert chunk_id(chunk("doc", 0)) == chunk_id(chunk("doc", 0, "other text"))
    assert chunk_id(chunk("b/c", 0, tenant="a")) != chunk_id(chunk("c", 0, tenant="a/b"))


def test_opensearch_upsert_sends_large_documents_in_batches(store: OpenSearchVectorStore, fake: FakeOpenSearch) -> None:
    fake.replies[("POST", f"/{INDEX}/_bulk")] = (200, {"errors": False, "items": []})

    store.upsert([chunk("big", i) for i in range(450)])

    bulks = [r for r in fake.requests if r.path == f"/{INDEX}/_bulk"]
    assert [len(r.body) // 2 for r in bulks] == [200, 200, 50]


def test_opensearch_upsert_reports_rejected_chunks(store: OpenSearchVectorStore, fake: FakeOpenSearch) -> None:
    error = {"type": "mapper_parsing_exception", "reason": "failed to parse field [vector]"}
    rejected = {"errors": True, "items": [{"index": {"status": 400, "error": error}}]}
    fake.replies[("POST", f"/{INDEX}/_bulk")] = (200, rejected)

    with pytest.raises(VectorStoreError, match="rejected 1 of 1 chunks.*mapper_parsing_exception"):
        store.upsert([chunk("doc", 0)])


def test_opensearch_upsert_checks_the_dimension(store: OpenSearchVectorStore, fake: FakeOpenSearch) -> None:
    wrong = chunk("doc", 0).model_copy(update={"vector": [1.0, 2.0]})

    with pytest.raises(InvalidChunkError, match="dimensions"):
        store.upsert([wrong])
    assert fake.requests == []


def test_opensearch_delete_document_returns_the_deleted_count(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    fake.replies[("POST", f"/{INDEX}/_delete_by_query")] = (200, {"deleted": 4})

    assert store.delete_document("acme", "doc") == 4
    assert fake.requests[0].body == {
        "query": {"bool": {"filter": [{"term": {"tenant": "acme"}}, {"term": {"document_id": "doc"}}]}}
    }


def test_opensearch_delete_and_count_on_a_missing_index_are_zero(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    missing = (404, {"error": {"type": "index_not_found_exception"}, "status": 404})
    fake.replies[("POST", f"/{INDEX}/_delete_by_query")] = missing
    fake.replies[("POST", f"/{INDEX}/_count")] = missing

    assert store.delete_document("acme", "doc") == 0
    assert store.count("acme") == 0


def test_opensearch_count_is_tenant_scoped(store: OpenSearchVectorStore, fake: FakeOpenSearch) -> None:
    fake.replies[("POST", f"/{INDEX}/_count")] = (200, {"count": 7})

    assert store.count("acme") == 7
    assert fake.requests[0].body == {"query": {"term": {"tenant": "acme"}}}


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (OpenSearchConnectionError("N/A", "connection refused", Exception("refused")), VectorStoreUnavailableError),
        ((429, {"error": {"type": "too_many_requests"}, "status": 429}), VectorStoreUnavailableError),
        ((503, {"error": {"type": "unavailable"}, "status": 503}), VectorStoreUnavailableError),
        ((400, {"error": {"type": "parsing_exception"}, "status": 400}), VectorStoreError),
    ],
)
def test_opensearch_errors_map_to_vector_store_errors(
    store: OpenSearchVectorStore, fake: FakeOpenSearch, reply: Any, error: type[Exception]
) -> None:
    fake.replies[("POST", f"/{INDEX}/_search")] = reply

    with pytest.raises(error):
        store.search(tenant="acme", query_text="x", query_vector=[1, 0, 0], k=5)


def test_client_for_signs_requests_with_sigv4_for_the_es_service() -> None:
    credentials = Credentials("AKIDEXAMPLE", "secret", "session-token")

    client = client_for("search-strata.eu-west-1.es.amazonaws.com", "eu-west-1", credentials=credentials)

    connection = client.transport.get_connection()
    assert connection.host == "https://search-strata.eu-west-1.es.amazonaws.com:443"
    auth = connection.session.auth
    assert isinstance(auth, AWSV4SignerAuth)
    signed = auth(requests.Request("GET", f"{connection.host}/{INDEX}/_count").prepare())
    assert signed.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/es/aws4_request" in signed.headers["Authorization"]
    assert signed.headers["X-Amz-Security-Token"] == "session-token"


def test_build_vector_store_picks_the_adapter_from_settings(tmp_path) -> None:  # noqa: ANN001
    local = build_vector_store(Settings(vector_store="local", vector_store_path=tmp_path / "v.db"))
    remote = build_vector_store(
        Settings(vector_store="opensearch", opensearch_endpoint="https://search-x.us-east-1.es.amazonaws.com")
    )

    assert isinstance(local, LocalVectorStore)
    assert local.path == tmp_path / "v.db"
    assert isinstance(remote, OpenSearchVectorStore)
    assert (remote.index, remote.pipeline, remote.dimension) == ("strata-chunks", "strata-chunks-hybrid", 384)
    local.close()


def test_build_vector_store_needs_an_endpoint_for_opensearch() -> None:
    with pytest.raises(VectorStoreError, match="STRATA_OPENSEARCH_ENDPOINT"):
        build_vector_store(Settings(vector_store="opensearch", opensearch_endpoint=None))


# -- index configuration, metadata, RRF, Serverless ------------------------------------------


def test_opensearch_index_body_takes_the_hnsw_parameters_from_the_config(fake: FakeOpenSearch) -> None:
    client = OpenSearch(hosts=[{"host": "search.test", "port": 443}], connection_class=RecordingConnection, fake=fake)
    managed = OpenSearchVectorStore(
        client, INDEX, 3, PIPELINE, config=IndexConfig(m=32, ef_construction=256, ef_search=64)
    )
    serverless = OpenSearchVectorStore(client, INDEX, 3, PIPELINE, config=IndexConfig(serverless=True))

    body = managed.index_body()

    assert body["settings"]["index"] == {"knn": True, "knn.algo_param.ef_search": 64}
    assert body["mappings"]["properties"]["vector"]["method"]["parameters"] == {"m": 32, "ef_construction": 256}
    # Serverless manages index settings itself; only index.knn is sent there.
    assert serverless.index_body()["settings"]["index"] == {"knn": True}
    properties = body["mappings"]["properties"]
    assert properties["metadata"] == {"type": "object", "enabled": False}
    assert properties["metadata_terms"] == {"type": "keyword"}
    assert properties["heading_path"] == {"type": "keyword", "index": False}


@pytest.mark.parametrize(("config", "message"), [({"m": 1}, "m must be"), ({"ef_search": 0}, "ef_search must be")])
def test_opensearch_index_config_rejects_values_opensearch_would(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IndexConfig(**config)


def test_opensearch_rrf_fusion_writes_the_score_ranker_processor(fake: FakeOpenSearch) -> None:
    client = OpenSearch(hosts=[{"host": "search.test", "port": 443}], connection_class=RecordingConnection, fake=fake)
    hybrid = HybridConfig(keyword_weight=0.3, vector_weight=0.7, fusion="rrf", rank_constant=40)
    remote = OpenSearchVectorStore(client, INDEX, 3, PIPELINE, hybrid=hybrid)

    remote.ensure_search_pipeline()

    assert fake.only("PUT", f"/_search/pipeline/{PIPELINE}").body["phase_results_processors"] == [
        {
            "score-ranker-processor": {
                "combination": {"technique": "rrf", "rank_constant": 40, "parameters": {"weights": [0.3, 0.7]}}
            }
        }
    ]


def test_opensearch_metadata_filters_are_terms_in_every_sub_query(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    fake.replies[("POST", f"/{INDEX}/_search")] = search_reply()

    store.search(tenant="acme", query_text="refund", query_vector=[1, 0, 0], k=3, filters={"team": "ops", "lang": "en"})

    request = fake.only("POST", f"/{INDEX}/_search")
    expected = [
        {"term": {"tenant": "acme"}},
        {"term": {"metadata_terms": '["lang", "en"]'}},
        {"term": {"metadata_terms": '["team", "ops"]'}},
    ]
    keyword, knn = request.body["query"]["hybrid"]["queries"]
    assert keyword["bool"]["filter"] == expected
    assert knn["knn"]["vector"]["filter"] == {"bool": {"filter": expected}}


def test_opensearch_bulk_indexes_metadata_as_terms_and_hits_read_it_back(
    store: OpenSearchVectorStore, fake: FakeOpenSearch
) -> None:
    fake.replies[("POST", f"/{INDEX}/_bulk")] = (200, {"errors": False, "items": []})
    tagged = chunk("doc", 0).model_copy(update={"metadata": {"lang": "en", "a=b": "c"}, "heading_path": ["H1", "H2"]})

    store.upsert([tagged])
    fake.replies[("POST", f"/{INDEX}/_search")] = search_reply(
        tagged.model_dump(exclude={"vector"}), source("old", 0) | {"heading_path": None, "metadata": None}
    )
    hits = store.search(tenant="acme", query_text="text", query_vector=None, k=5, mode="keyword")

    document = fake.only("POST", f"/{INDEX}/_bulk").body[1]
    assert document["metadata"] == {"lang": "en", "a=b": "c"}
    assert document["metadata_terms"] == ['["a=b", "c"]', '["lang", "en"]']  # JSON: "=" in a key is unambiguous
    assert [(h.heading_path, h.metadata) for h in hits] == [(["H1", "H2"], {"lang": "en", "a=b": "c"}), ([], {})]


def test_opensearch_bootstrap_creates_the_index_once_and_rewrites_the_pipeline() -> None:
    cluster = FakeCluster()
    remote = OpenSearchVectorStore(fake_client(cluster), INDEX, 3, PIPELINE)

    first, second = remote.bootstrap(), remote.bootstrap()

    assert (first, second) == (True, False)
    assert [(r.method, r.path) for r in cluster.requests] == [
        ("HEAD", f"/{INDEX}"),
        ("PUT", f"/{INDEX}"),
        ("PUT", f"/_search/pipeline/{PIPELINE}"),
        ("HEAD", f"/{INDEX}"),
        ("PUT", f"/{INDEX}/_mapping"),
        ("PUT", f"/_search/pipeline/{PIPELINE}"),
    ]
    assert cluster.indices[INDEX]["mappings"]["properties"] == remote.index_body()["mappings"]["properties"]
    assert cluster.pipelines[PIPELINE] == remote.pipeline_body()


def test_client_for_signs_requests_for_serverless_with_the_aoss_service() -> None:
    credentials = Credentials("AKIDEXAMPLE", "secret")

    client = client_for("abc123.eu-west-1.aoss.amazonaws.com", "eu-west-1", credentials=credentials, service="aoss")

    connection = client.transport.get_connection()
    signed = connection.session.auth(requests.Request("POST", f"{connection.host}/{INDEX}/_search").prepare())
    assert "/eu-west-1/aoss/aws4_request" in signed.headers["Authorization"]
    with pytest.raises(ValueError, match="service"):
        client_for("x.example", "eu-west-1", credentials=credentials, service="opensearch")


def test_build_vector_store_passes_the_index_settings_and_signs_for_serverless() -> None:
    settings = Settings(
        vector_store="opensearch",
        opensearch_endpoint="https://abc.us-east-1.aoss.amazonaws.com",
        opensearch_knn_m=24,
        opensearch_knn_ef_search=256,
        opensearch_serverless=True,
    )

    remote = build_vector_store(settings)

    assert isinstance(remote, OpenSearchVectorStore)
    assert (remote.config.m, remote.config.ef_search, remote.config.serverless) == (24, 256, True)
    auth = remote.client.transport.get_connection().session.auth
    assert auth.service == "aoss"
