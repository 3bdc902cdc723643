"""POST /v1/search over HTTP: the caller's tenant only, the request's options passed through to
the vector store, ranked hits with their scores, a 400 naming the field on bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.api.app import app
from strata.config import Settings, get_settings
from strata.retrieval import SearchHit, SearchMode, VectorStore
from strata.retrieval.base import SearchRequest
from strata.throttle import InMemoryBucketStore, RateLimiter
from strata.web import REQUEST_CONTEXT_HEADER
from strata.web.dependencies import query_embedder, rate_limiter, vector_store

SETTINGS = Settings(embedding_endpoint="minilm-embed")


def key(tenant: str, scopes: str = "chat", limits: dict[str, Any] | None = None) -> dict[str, str]:
    authorizer = {"tenant": tenant, "key_id": f"{tenant}-key", "scopes": scopes}
    if limits is not None:
        authorizer["limits"] = json.dumps(limits)
    return {REQUEST_CONTEXT_HEADER: json.dumps({"authorizer": authorizer})}


ACME = key("acme")


def search_hit(document: str, chunk: int, score: float, similarity: float | None) -> SearchHit:
    text = "Refunds are paid within 14 days."
    return SearchHit(
        tenant="acme",
        document_id=document,
        chunk_index=chunk,
        text=text,
        source_key=f"tenants/acme/{document}.pdf",
        title=document.title(),
        page=2,
        char_start=10,
        char_end=10 + len(text),
        score=score,
        similarity=similarity,
        heading_path=["Policies", "Refunds"],
        metadata={"language": "en"},
    )


class RecordingStore(VectorStore):
    """The port's own checks, then the requests it was given and the hits it is told to return."""

    def __init__(self, hits: list[SearchHit]) -> None:
        self.hits = hits
        self.requests: list[SearchRequest] = []

    def _search(self, request: SearchRequest) -> list[SearchHit]:
        self.requests.append(request)
        return self.hits[: request.k]

    def _replace_documents(self, documents: dict) -> None:
        raise NotImplementedError

    def _delete_document(self, tenant: str, document_id: str) -> int:
        raise NotImplementedError

    def _count(self, tenant: str) -> int:
        return len(self.hits)


class CountingEmbedder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return [[0.6, 0.8, 0.0] for _ in texts]


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore([search_hit("refunds", 0, 1.0, 0.82), search_hit("terms", 4, 0.4, 0.51)])


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def limiter() -> Iterator[RateLimiter]:
    limiter = RateLimiter(InMemoryBucketStore())
    yield limiter
    limiter.close()


@pytest.fixture
def client(store: RecordingStore, embedder: CountingEmbedder, limiter: RateLimiter) -> Iterator[TestClient]:
    app.dependency_overrides[get_settings] = lambda: SETTINGS
    app.dependency_overrides[vector_store] = lambda: store
    app.dependency_overrides[query_embedder] = lambda: embedder
    app.dependency_overrides[rate_limiter] = lambda: limiter
    with TestClient(app) as test_client:
        yield test_client
    app.dependency_overrides.clear()


def test_a_search_returns_the_ranked_hits_with_their_scores(
    client: TestClient, store: RecordingStore, embedder: CountingEmbedder
) -> None:
    response = client.post("/v1/search", json={"query": "how long do refunds take?", "k": 2}, headers=ACME)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["object"], body["model"], body["mode"]) == ("list", "minilm-embed", "hybrid")
    assert [(h["document_id"], h["chunk_index"]) for h in body["data"]] == [("refunds", 0), ("terms", 4)]
    first = body["data"][0]
    assert first == {
        "document_id": "refunds",
        "source_key": "tenants/acme/refunds.pdf",
        "title": "Refunds",
        "chunk_index": 0,
        "page": 2,
        "heading_path": ["Policies", "Refunds"],
        "text": "Refunds are paid within 14 days.",
        "char_start": 10,
        "char_end": 42,
        "metadata": {"language": "en"},
        "scores": {"keyword": None, "vector": 0.82, "fused": 1.0},
    }
    assert embedder.texts == ["how long do refunds take?"]
    (request,) = store.requests
    assert (request.mode, request.k, request.vector) == (SearchMode.HYBRID, 2, (0.6, 0.8, 0.0))


def test_the_search_is_scoped_to_the_callers_tenant(client: TestClient, store: RecordingStore) -> None:
    client.post("/v1/search", json={"query": "refunds"}, headers=key("globex"))
    client.post("/v1/search", json={"query": "refunds"}, headers=ACME)
    assert [r.tenant for r in store.requests] == ["globex", "acme"]


def test_a_tenant_in_the_body_is_refused_not_obeyed(client: TestClient, store: RecordingStore) -> None:
    response = client.post("/v1/search", json={"query": "refunds", "tenant": "globex"}, headers=ACME)
    assert response.status_code == 400
    assert store.requests == []


def test_documents_and_metadata_filters_reach_the_store(client: TestClient, store: RecordingStore) -> None:
    body = {"query": "refunds", "document_ids": ["refunds", "terms"], "filters": {"language": "en", "team": "ops"}}
    assert client.post("/v1/search", json=body, headers=ACME).status_code == 200
    (request,) = store.requests
    assert request.document_ids == ("refunds", "terms")
    assert request.filters == (("language", "en"), ("team", "ops"))


def test_keyword_mode_embeds_nothing_and_reports_the_keyword_score(
    client: TestClient, store: RecordingStore, embedder: CountingEmbedder
) -> None:
    store.hits = [search_hit("refunds", 0, 7.25, None)]
    body = client.post("/v1/search", json={"query": "refunds", "mode": "keyword"}, headers=ACME).json()
    assert embedder.texts == []
    assert store.requests[0].vector is None
    assert body["data"][0]["scores"] == {"keyword": 7.25, "vector": None, "fused": 7.25}


def test_an_empty_document_list_matches_nothing(client: TestClient, store: RecordingStore) -> None:
    body = client.post("/v1/search", json={"query": "refunds", "document_ids": []}, headers=ACME).json()
    assert body["data"] == []
    assert store.requests == []  # the port answers it without asking the adapter


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "x" * 4001}, "query"),
        ({"query": "refunds", "k": 0}, "k"),
        ({"query": "refunds", "k": 101}, "k"),
        ({"query": "refunds", "k": "5"}, "k"),
        ({"query": "refunds", "mode": "semantic"}, "mode"),
        ({"query": "refunds", "filters": {"language": 1}}, "filters"),
        ({"query": "refunds", "filters": {"": "en"}}, "filters"),
        ({"query": "refunds", "document_ids": "refunds"}, "document_ids"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    client: TestClient, store: RecordingStore, body: dict[str, Any], param: str
) -> None:
    response = client.post("/v1/search", json=body, headers=ACME)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert (error["param"] or "").split(".")[0] == param, error
    assert store.requests == []


def test_a_search_counts_against_the_keys_request_limit(client: TestClient) -> None:
    limited = key("acme", limits={"key": {"requests_per_minute": 1}})
    first = client.post("/v1/search", json={"query": "refunds"}, headers=limited)
    second = client.post("/v1/search", json={"query": "refunds"}, headers=limited)
    assert first.status_code == 200
    assert second.status_code == 429
    assert "retry-after" in {name.lower() for name in second.headers}


def test_a_key_without_the_chat_scope_is_refused(client: TestClient, store: RecordingStore) -> None:
    response = client.post("/v1/search", json={"query": "refunds"}, headers=key("acme", scopes="documents:write"))
    assert response.status_code == 403
    assert store.requests == []
