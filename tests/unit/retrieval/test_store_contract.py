"""One behavioural contract, run against both adapters: the embedded store on a temporary SQLite
file, and the OpenSearch adapter on an in-memory fake cluster (``fake_opensearch``) that answers
the adapter's requests as OpenSearch does."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from strata.retrieval import ChunkRecord, HybridConfig, LocalVectorStore, OpenSearchVectorStore, SearchHit, SearchMode
from strata.retrieval.base import VectorStore
from strata.retrieval.opensearch import chunk_id
from tests.unit.retrieval.fake_opensearch import FakeCluster, fake_client

ALL_MODES = list(SearchMode)
DIMENSION = 4


def chunk(
    document_id: str,
    index: int,
    text: str,
    vector: Sequence[float],
    *,
    tenant: str = "acme",
    metadata: dict[str, str] | None = None,
    headings: list[str] | None = None,
) -> ChunkRecord:
    return ChunkRecord(
        tenant=tenant,
        document_id=document_id,
        chunk_index=index,
        text=text,
        vector=list(vector),
        source_key=f"tenants/{tenant}/{document_id}.md",
        title=document_id.title(),
        page=index + 1,
        char_start=index * 10,
        char_end=index * 10 + len(text),
        heading_path=headings or [],
        metadata=metadata or {},
    )


def fillers() -> list[ChunkRecord]:
    """Unrelated chunks of another tenant, so that BM25's IDF has a corpus in both stores."""
    topics = ["tax forms", "garden tools", "train timetable", "coffee beans", "winter tyres", "opera tickets"]
    return [
        chunk(f"filler-{i}", 0, f"notes about {topics[i % 6]} {i}", [0, 0, 0, 1], tenant="filler") for i in range(12)
    ]


def ids(hits: Sequence[SearchHit]) -> list[tuple[str, int]]:
    return [(hit.document_id, hit.chunk_index) for hit in hits]


@pytest.fixture(params=["local", "opensearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    # min-max: the fusion both the documentation and the fake describe; pinned against tuning.
    opened = make_store(request.param, tmp_path, HybridConfig(0.5, 0.5, candidates=20, fusion="min_max"))
    opened.upsert(fillers())
    yield opened
    opened.close()


def make_store(kind: str, tmp_path: Path, hybrid: HybridConfig) -> VectorStore:
    if kind == "local":
        return LocalVectorStore(tmp_path / "vectors.db", hybrid=hybrid)
    cluster = FakeCluster()
    remote = OpenSearchVectorStore(fake_client(cluster), "chunks", DIMENSION, "chunks-hybrid", hybrid=hybrid)
    remote.bootstrap()
    remote.cluster = cluster  # type: ignore[attr-defined]  # for tests that script the fake
    return remote


def search(store: VectorStore, mode: SearchMode | str = "hybrid", **kwargs: object) -> list[SearchHit]:
    request = {"tenant": "acme", "query_text": "refund policy", "query_vector": [1, 0, 0, 0], "k": 10} | kwargs
    return store.search(mode=mode, **request)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_store_returns_headings_and_metadata_in_every_mode(store: VectorStore, mode: SearchMode) -> None:
    stored = chunk(
        "policy", 0, "refund policy for damaged goods", [1, 0, 0, 0],
        metadata={"language": "en", "team": "support"}, headings=["Refunds", "Damaged goods"],
    )  # fmt: skip
    store.upsert([stored])

    (hit,) = search(store, mode)

    assert hit.heading_path == ["Refunds", "Damaged goods"]
    assert hit.metadata == {"language": "en", "team": "support"}
    assert (hit.tenant, hit.document_id, hit.chunk_index, hit.text) == ("acme", "policy", 0, stored.text)
    assert (hit.source_key, hit.title, hit.page, hit.char_start, hit.char_end) == (
        stored.source_key, stored.title, stored.page, stored.char_start, stored.char_end,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ALL_MODES)
def test_store_metadata_filters_are_exact_and_all_required(store: VectorStore, mode: SearchMode) -> None:
    store.upsert(
        [
            chunk(
                "en-support", 0, "refund policy in english", [1, 0, 0, 0], metadata={"lang": "en", "team": "support"}
            ),
            chunk("en-sales", 0, "refund policy for sales", [1, 0.1, 0, 0], metadata={"lang": "en", "team": "sales"}),
            chunk(
                "de-support", 0, "refund policy auf deutsch", [1, 0.2, 0, 0], metadata={"lang": "de", "team": "support"}
            ),
            chunk("untagged", 0, "refund policy untagged", [1, 0.3, 0, 0]),
        ]
    )

    both = search(store, mode, filters={"lang": "en", "team": "support"})
    english = search(store, mode, filters={"lang": "en"})
    wrong_case = search(store, mode, filters={"lang": "EN"})
    unknown_key = search(store, mode, filters={"region": "eu"})

    assert ids(both) == [("en-support", 0)]
    assert sorted(ids(english)) == [("en-sales", 0), ("en-support", 0)]
    assert wrong_case == []
    assert unknown_key == []


@pytest.mark.parametrize("mode", ALL_MODES)
def test_store_filters_by_document_ids_and_metadata_together(store: VectorStore, mode: SearchMode) -> None:
    store.upsert(
        [chunk(doc, 0, f"refund policy {doc}", [1, 0, 0, 0], metadata={"lang": lang}) for doc, lang in
         (("a", "en"), ("b", "en"), ("c", "de"))]
    )  # fmt: skip

    hits = search(store, mode, document_ids=["b", "c"], filters={"lang": "en"})
    none = search(store, mode, document_ids=[])

    assert ids(hits) == [("b", 0)]
    assert none == []


@pytest.mark.parametrize("mode", ALL_MODES)
def test_store_never_returns_another_tenants_chunks(store: VectorStore, mode: SearchMode) -> None:
    store.upsert([chunk("shared", 0, "refund policy", [1, 0, 0, 0], metadata={"lang": "en"})])
    store.upsert([chunk("shared", 0, "refund policy", [1, 0, 0, 0], tenant="globex", metadata={"lang": "en"})])
    store.upsert([chunk("secret", i, f"refund policy {i}", [1, 0, 0, 0], tenant="globex") for i in range(4)])

    hits = search(store, mode, filters={"lang": "en"})

    assert [(hit.tenant, hit.document_id) for hit in hits] == [("acme", "shared")]


def test_store_reupsert_replaces_the_document_and_drops_stale_chunks(store: VectorStore) -> None:
    store.upsert([chunk("policy", i, f"old refund rules part {i}", [1, 0, 0, 0]) for i in range(3)])
    store.upsert([chunk("other", 0, "unrelated refund note", [0, 1, 0, 0])])

    store.upsert([chunk("policy", 0, "new refund rules", [1, 0, 0, 0], metadata={"v": "2"})])

    assert store.count("acme") == 2
    hits = search(store, "keyword", query_text="refund rules")
    assert sorted(ids(hits)) == [("other", 0), ("policy", 0)]
    assert [h.metadata for h in hits if h.document_id == "policy"] == [{"v": "2"}]
    assert search(store, "keyword", query_text="old") == []


def test_store_delete_document_counts_and_is_tenant_scoped(store: VectorStore) -> None:
    store.upsert([chunk("doc", i, f"text {i}", [1, 0, 0, 0]) for i in range(3)])
    store.upsert([chunk("doc", 0, "text", [1, 0, 0, 0], tenant="globex")])

    assert store.delete_document("acme", "doc") == 3
    assert store.delete_document("acme", "doc") == 0
    assert (store.count("acme"), store.count("globex")) == (0, 1)


def test_store_vector_scores_use_the_cosinesimil_scale(store: VectorStore) -> None:
    store.upsert(
        [
            chunk("d", 0, "same direction", [2, 0, 0, 0]),
            chunk("d", 1, "orthogonal", [0, 3, 0, 0]),
            chunk("d", 2, "opposite", [-1, 0, 0, 0]),
        ]
    )

    hits = search(store, "vector", k=3)

    assert [(hit.text, round(hit.score, 5), round(hit.similarity or 0, 5)) for hit in hits] == [
        ("same direction", 1.0, 1.0),
        ("orthogonal", 0.5, 0.0),
        ("opposite", 0.0, -1.0),
    ]


def test_store_keyword_search_ranks_the_better_match_first(store: VectorStore) -> None:
    store.upsert(
        [
            chunk("weak", 0, "a long note that mentions a refund once among many other words here", [1, 0, 0, 0]),
            chunk("strong", 0, "refund policy: refund within thirty days", [0, 1, 0, 0]),
            chunk("none", 0, "shipping times", [0, 0, 1, 0]),
        ]
    )

    hits = search(store, "keyword")

    assert ids(hits) == [("strong", 0), ("weak", 0)]
    assert search(store, "keyword", query_text="the of and") == []


@pytest.mark.parametrize(
    ("weights", "expected_first"), [((0.5, 0.5), "both"), ((0.9, 0.1), "exact"), ((0.1, 0.9), "semantic")]
)
@pytest.mark.parametrize("kind", ["local", "opensearch"])
def test_store_hybrid_weights_move_the_ranking(
    tmp_path: Path, kind: str, weights: tuple[float, float], expected_first: str
) -> None:
    config = HybridConfig(keyword_weight=weights[0], vector_weight=weights[1], candidates=10, fusion="min_max")
    store = make_store(kind, tmp_path, config)
    store.upsert(fillers())
    store.upsert(
        [
            chunk("exact", 0, "invoice dispute: how to dispute an invoice", [0.0, 1.0, 0.0, 0.0]),
            chunk("both", 0, "an invoice dispute may be raised by the customer", [0.6, 0.8, 0.0, 0.0]),
            chunk("semantic", 0, "how a customer contests a charge", [1.0, 0.1, 0.0, 0.0]),
            # A weak keyword match far from the query: the floor of both min-max ranges.
            chunk("noise", 0, "office plants; the invoice for the plants is in the shed with receipts", [0, 0, 1, 0]),
        ]
    )

    hits = search(store, query_text="invoice dispute", query_vector=[1.0, 0.3, 0.0, 0.0], k=3)
    store.close()

    assert hits[0].document_id == expected_first
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)


@pytest.mark.parametrize("fusion", ["min_max", "rrf"])
def test_both_adapters_fuse_the_same_candidate_scores_into_the_same_ranking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fusion: str
) -> None:
    # The same raw sub-query scores, given to each adapter at the point where its backend would
    # produce them: the local store's two scorers, the fake cluster's two sub-queries. What comes
    # out is each adapter's fusion (local: strata.retrieval.hybrid; OpenSearch: the pipeline).
    keyword = {("a", 0): 7.5, ("b", 0): 3.0, ("c", 0): 2.9, ("d", 0): 0.4}
    vector = {("c", 0): 0.93, ("e", 0): 0.91, ("a", 0): 0.60, ("d", 0): 0.55, ("b", 0): 0.51}
    chunks = [chunk(doc, 0, f"text of {doc}", [1, i, 0, 0]) for i, doc in enumerate("abcde")]
    config = HybridConfig(keyword_weight=0.3, vector_weight=0.7, candidates=10, fusion=fusion)
    rankings = {}

    local = make_store("local", tmp_path, config)
    local.upsert(chunks)
    row_of = {(h.document_id, h.chunk_index): h for h in search(local, "vector", k=5)}
    assert len(row_of) == 5
    id_of = {key: _local_id(local, *key) for key in row_of}
    key_of = {v: k for k, v in id_of.items()}
    monkeypatch.setattr(
        local, "_keyword_scores", lambda conn, request, depth: {id_of[k]: s for k, s in keyword.items()}
    )
    monkeypatch.setattr(local, "_vector_scores", lambda conn, request, depth: {id_of[k]: s for k, s in vector.items()})
    rankings["local"] = [((h.document_id, h.chunk_index), h.score) for h in search(local, k=5)]
    assert set(key_of) == set(id_of.values())
    local.close()

    remote = make_store("opensearch", tmp_path, config)
    remote.upsert(chunks)
    by_key = {(c.document_id, c.chunk_index): chunk_id(c) for c in chunks}
    remote.cluster.sub_scores = {  # type: ignore[attr-defined]
        "keyword": {by_key[k]: s for k, s in keyword.items()},
        "vector": {by_key[k]: s for k, s in vector.items()},
    }
    rankings["opensearch"] = [((h.document_id, h.chunk_index), h.score) for h in search(remote, k=5)]

    assert [key for key, _ in rankings["local"]] == [key for key, _ in rankings["opensearch"]]
    assert [score for _, score in rankings["local"]] == pytest.approx([score for _, score in rankings["opensearch"]])
    assert rankings["local"][0][0] == ("c", 0)  # strong on vectors, decent on keywords


def _local_id(store: LocalVectorStore, document_id: str, chunk_index: int) -> int:
    row = (
        store._conn()
        .execute(
            "SELECT id FROM chunks WHERE tenant = 'acme' AND document_id = ? AND chunk_index = ?",
            (document_id, chunk_index),
        )
        .fetchone()
    )
    return int(row[0])
