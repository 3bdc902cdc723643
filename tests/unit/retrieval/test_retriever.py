from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from strata.config import Settings
from strata.retrieval import (
    HttpReranker,
    Reranker,
    RerankUnavailableError,
    Retriever,
    SearchHit,
    SearchMode,
    build_retriever,
)
from tests.fakes import hit

KANGAROO = "Kangaroos are marsupials that hop across the Australian outback and eat grass."
PENGUIN = "Penguins are flightless birds that swim in the cold seas around Antarctica."
VOLCANO = "Volcanoes erupt lava and ash from deep below the crust of the Earth."


class RecordingStore:
    """The store port's ``search``, answering a fixed ranking cut to ``k``."""

    def __init__(self, hits: list[SearchHit]) -> None:
        self.hits = hits
        self.calls: list[dict[str, Any]] = []

    def search(self, **kwargs: Any) -> list[SearchHit]:
        self.calls.append(kwargs)
        return self.hits[: kwargs["k"]]


class CountingEmbedder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return [[1.0, 0.0] for _ in texts]


class ReversingReranker(Reranker):
    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        return list(reversed(hits))


class BrokenReranker(Reranker):
    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        raise RerankUnavailableError("the re-ranker at http://x timed out")


HITS = [
    hit("kangaroo", 0, 0.9, KANGAROO),
    hit("kangaroo-copy", 0, 0.88, KANGAROO),
    hit("penguin", 0, 0.6, PENGUIN),
    hit("volcano", 0, 0.1, VOLCANO),
]


def test_retriever_without_stages_asks_the_store_for_k_hits() -> None:
    store, embedder = RecordingStore(HITS), CountingEmbedder()

    hits = Retriever(store, embedder).search(tenant="acme", query="kangaroos", k=2)  # type: ignore[arg-type]

    assert [h.document_id for h in hits] == ["kangaroo", "kangaroo-copy"]
    assert store.calls[0]["k"] == 2
    assert store.calls[0]["query_vector"] == [1.0, 0.0]
    assert embedder.texts == ["kangaroos"]


def test_retriever_keyword_mode_skips_the_embedding() -> None:
    store, embedder = RecordingStore(HITS), CountingEmbedder()

    Retriever(store, embedder).search(tenant="acme", query="kangaroos", k=2, mode=SearchMode.KEYWORD)  # type: ignore[arg-type]

    assert embedder.texts == []
    assert store.calls[0]["query_vector"] is None


def test_retriever_with_mmr_searches_candidates_and_drops_the_copy() -> None:
    store = RecordingStore(HITS)

    hits = Retriever(store, CountingEmbedder(), mmr_lambda=0.5, candidates=10).search(  # type: ignore[arg-type]
        tenant="acme", query="animals", k=2
    )

    assert store.calls[0]["k"] == 10
    assert [h.document_id for h in hits] == ["kangaroo", "penguin"]


def test_retriever_reranks_the_candidates_before_keeping_k() -> None:
    store = RecordingStore(HITS)

    hits = Retriever(store, CountingEmbedder(), reranker=ReversingReranker(), candidates=4).search(  # type: ignore[arg-type]
        tenant="acme", query="animals", k=2
    )

    assert [h.document_id for h in hits] == ["volcano", "penguin"]


def test_retriever_keeps_the_search_order_when_the_reranker_fails(caplog: pytest.LogCaptureFixture) -> None:
    retriever = Retriever(RecordingStore(HITS), CountingEmbedder(), reranker=BrokenReranker())  # type: ignore[arg-type]

    hits = retriever.search(tenant="acme", query="animals", k=2)

    assert [h.document_id for h in hits] == ["kangaroo", "kangaroo-copy"]
    assert "re-ranking skipped" in caplog.text


def test_retriever_passes_document_ids_and_filters_through() -> None:
    store = RecordingStore(HITS)

    Retriever(store, CountingEmbedder()).search(  # type: ignore[arg-type]
        tenant="acme", query="q", k=1, document_ids=["kangaroo"], filters={"language": "en"}
    )

    assert store.calls[0]["document_ids"] == ["kangaroo"]
    assert store.calls[0]["filters"] == {"language": "en"}


@pytest.mark.parametrize("kwargs", [{"mmr_lambda": 1.5}, {"candidates": 0}])
def test_retriever_rejects_settings_out_of_range(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Retriever(RecordingStore(HITS), CountingEmbedder(), **kwargs)  # type: ignore[arg-type]


def test_build_retriever_turns_on_the_stages_the_settings_name() -> None:
    settings = Settings(rerank_url="http://reranker.test/rerank", retrieval_mmr_lambda=0.7, retrieval_candidates=30)

    retriever = build_retriever(settings, RecordingStore(HITS), CountingEmbedder())  # type: ignore[arg-type]

    assert isinstance(retriever._reranker, HttpReranker)
    assert retriever._reranker.url == "http://reranker.test/rerank"
    assert (retriever._mmr_lambda, retriever._candidates) == (0.7, 30)


def test_build_retriever_by_default_runs_no_stage_and_makes_no_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no HTTP client expected")

    monkeypatch.setattr(httpx, "Client", no_network)
    store = RecordingStore(HITS)

    hits = build_retriever(Settings(), store, CountingEmbedder()).search(tenant="acme", query="q", k=3)  # type: ignore[arg-type]

    assert store.calls[0]["k"] == 3
    assert len(hits) == 3
