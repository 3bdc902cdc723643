from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from strata.retrieval import (
    ChunkRecord,
    HybridConfig,
    InvalidChunkError,
    InvalidQueryError,
    LocalVectorStore,
    SearchHit,
    SearchMode,
    VectorStoreError,
)

ALL_MODES = list(SearchMode)


def chunk(
    tenant: str, document_id: str, index: int, text: str, vector: Sequence[float], *, page: int | None = None
) -> ChunkRecord:
    return ChunkRecord(
        tenant=tenant,
        document_id=document_id,
        chunk_index=index,
        text=text,
        vector=list(vector),
        source_key=f"tenants/{tenant}/{document_id}.txt",
        title=document_id.title(),
        page=page,
        char_start=index * 100,
        char_end=index * 100 + len(text),
    )


def fillers(tenant: str = "filler", count: int = 12) -> list[ChunkRecord]:
    """Unrelated chunks: BM25's IDF (global, like an OpenSearch shard's) needs a real corpus."""
    topics = ["tax forms", "garden tools", "train timetable", "coffee beans", "winter tyres", "opera tickets"]
    return [
        chunk(tenant, f"filler-{i}", 0, f"notes about {topics[i % len(topics)]} {i}", [0, 0, 0, 1])
        for i in range(count)
    ]


def ids(hits: Sequence[SearchHit]) -> list[tuple[str, int]]:
    return [(hit.document_id, hit.chunk_index) for hit in hits]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalVectorStore]:
    with LocalVectorStore(tmp_path / "vectors.db") as opened:
        opened.upsert(fillers())
        yield opened


def test_local_store_search_finds_chunks_in_every_mode(store: LocalVectorStore) -> None:
    store.upsert(
        [
            chunk("acme", "animals", 0, "The kangaroo hops across the outback.", [1, 0, 0, 0]),
            chunk("acme", "animals", 1, "Penguins swim in cold southern water.", [0, 1, 0, 0]),
            chunk("acme", "birds", 0, "Ducks migrate south for the winter.", [0, 0, 1, 0]),
        ]
    )

    vector = store.search(tenant="acme", query_text="", query_vector=[0.9, 0.1, 0, 0], k=2, mode="vector")
    keyword = store.search(tenant="acme", query_text="kangaroo", query_vector=None, k=5, mode="keyword")
    hybrid = store.search(tenant="acme", query_text="penguins", query_vector=[0, 1, 0.2, 0], k=3)

    assert ids(vector) == [("animals", 0), ("animals", 1)]
    assert ids(keyword) == [("animals", 0)]
    assert ids(hybrid)[0] == ("animals", 1)
    first = keyword[0]
    assert (first.tenant, first.text, first.title, first.source_key) == (
        "acme",
        "The kangaroo hops across the outback.",
        "Animals",
        "tenants/acme/animals.txt",
    )
    assert (first.char_start, first.char_end) == (0, len(first.text))


def test_local_store_vector_scores_use_the_opensearch_cosinesimil_scale(store: LocalVectorStore) -> None:
    store.upsert(
        [
            chunk("acme", "d", 0, "same direction", [2, 0, 0, 0]),
            chunk("acme", "d", 1, "orthogonal", [0, 3, 0, 0]),
            chunk("acme", "d", 2, "opposite", [-1, 0, 0, 0]),
        ]
    )

    hits = store.search(tenant="acme", query_text=None, query_vector=[1, 0, 0, 0], k=3, mode=SearchMode.VECTOR)

    # (1 + cos) / 2: 1.0 for the same direction, 0.5 at 90 degrees, 0.0 opposite.
    assert [(hit.text, pytest.approx(hit.score, abs=1e-6)) for hit in hits] == [
        ("same direction", 1.0),
        ("orthogonal", 0.5),
        ("opposite", 0.0),
    ]


def test_local_store_hits_carry_the_querys_cosine_whatever_the_modes_score(store: LocalVectorStore) -> None:
    store.upsert(
        [
            chunk("acme", "d", 0, "kangaroo grass diet", [1, 0, 0, 0]),
            chunk("acme", "d", 1, "kangaroo pouch", [0.6, 0.8, 0, 0]),
            *fillers("acme"),
        ]
    )

    hybrid = store.search(tenant="acme", query_text="kangaroo", query_vector=[1, 0, 0, 0], k=2)
    keyword = store.search(tenant="acme", query_text="kangaroo", query_vector=None, k=2, mode=SearchMode.KEYWORD)

    # The hybrid score is normalized per query (the best hit scores about 1.0 however unrelated);
    # the similarity is the absolute cosine, for a relevance floor.
    assert {hit.text: pytest.approx(hit.similarity, abs=1e-6) for hit in hybrid} == {
        "kangaroo grass diet": 1.0,
        "kangaroo pouch": 0.6,
    }
    assert [hit.similarity for hit in keyword] == [None, None]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_local_store_never_returns_another_tenants_chunks(store: LocalVectorStore, mode: SearchMode) -> None:
    # Same document id, same text, same vector: only the tenant differs.
    store.upsert([chunk("acme", "shared", 0, "quarterly revenue report", [1, 0, 0, 0])])
    store.upsert([chunk("globex", "shared", 0, "quarterly revenue report", [1, 0, 0, 0])])
    store.upsert([chunk("globex", "secret", i, f"quarterly revenue secret {i}", [1, 0, 0, 0]) for i in range(5)])

    hits = store.search(tenant="acme", query_text="quarterly revenue", query_vector=[1, 0, 0, 0], k=10, mode=mode)

    assert {hit.tenant for hit in hits} == {"acme"}
    assert ids(hits) == [("shared", 0)]


def test_local_store_counts_and_deletes_per_tenant(store: LocalVectorStore) -> None:
    store.upsert([chunk("acme", "shared", i, f"text {i}", [1, 0, 0, 0]) for i in range(3)])
    store.upsert([chunk("globex", "shared", 0, "text", [1, 0, 0, 0])])

    removed = store.delete_document("acme", "shared")

    assert removed == 3
    assert store.count("acme") == 0
    assert store.count("globex") == 1
    assert store.delete_document("acme", "shared") == 0
    assert store.delete_document("acme", "never-indexed") == 0


def test_local_store_reupsert_replaces_the_documents_chunks(store: LocalVectorStore) -> None:
    store.upsert([chunk("acme", "policy", i, f"old refund rules part {i}", [1, 0, 0, 0]) for i in range(3)])

    store.upsert([chunk("acme", "policy", 0, "new refund rules", [0, 1, 0, 0])])

    assert store.count("acme") == 1
    hits = store.search(tenant="acme", query_text="refund rules", query_vector=[1, 0, 0, 0], k=10)
    assert [hit.text for hit in hits] == ["new refund rules"]
    assert store.search(tenant="acme", query_text="old", query_vector=None, k=10, mode="keyword") == []


def test_local_store_upsert_leaves_other_documents_alone(store: LocalVectorStore) -> None:
    store.upsert([chunk("acme", "a", 0, "alpha text", [1, 0, 0, 0])])
    store.upsert([chunk("acme", "b", 0, "beta text", [0, 1, 0, 0])])

    store.upsert([chunk("acme", "a", 0, "alpha text again", [1, 0, 0, 0])])

    assert store.count("acme") == 2


def test_local_store_replace_document_with_no_chunks_deletes_it(store: LocalVectorStore) -> None:
    store.upsert([chunk("acme", "a", 0, "alpha", [1, 0, 0, 0])])

    store.replace_document("acme", "a", [])

    assert store.count("acme") == 0


def test_local_store_replace_document_rejects_chunks_of_another_document(store: LocalVectorStore) -> None:
    with pytest.raises(InvalidChunkError, match="replace_document"):
        store.replace_document("acme", "a", [chunk("acme", "b", 0, "beta", [1, 0, 0, 0])])


def test_local_store_data_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "vectors.db"
    with LocalVectorStore(path) as first:
        first.upsert(fillers())
        first.upsert([chunk("acme", "wolf", 0, "Gray wolves hunt in packs.", [0, 0, 1, 0], page=2)])

    with LocalVectorStore(path) as reopened:
        hits = reopened.search(tenant="acme", query_text="wolves", query_vector=[0, 0, 1, 0], k=1)
        assert reopened.count("acme") == 1
        assert reopened.dimension == 4

    assert [(hit.text, hit.page) for hit in hits] == [("Gray wolves hunt in packs.", 2)]


def test_local_store_sees_writes_made_through_another_instance(tmp_path: Path) -> None:
    # Another process (the ingest worker) writing the same file: the cached matrix must refresh.
    path = tmp_path / "vectors.db"
    with LocalVectorStore(path) as reader, LocalVectorStore(path) as writer:
        writer.upsert([chunk("acme", "a", 0, "alpha", [1, 0, 0, 0])])
        assert len(reader.search(tenant="acme", query_text="", query_vector=[0, 1, 0, 0], k=5, mode="vector")) == 1

        writer.upsert([chunk("acme", "b", 0, "beta", [0, 1, 0, 0])])
        hits = reader.search(tenant="acme", query_text="", query_vector=[0, 1, 0, 0], k=5, mode="vector")

    assert ids(hits) == [("b", 0), ("a", 0)]


def _hybrid_corpus(store: LocalVectorStore) -> None:
    # "exact": the best keyword match, far from the query vector; "both": a good keyword match,
    # fairly close to the query; "semantic": closest to the query, no keyword match; "noise":
    # a weak keyword match, far from the query.
    store.upsert(
        [
            chunk("acme", "exact", 0, "invoice dispute: how to dispute an invoice", [0.0, 1.0, 0.0, 0.0]),
            chunk("acme", "both", 0, "an invoice dispute may be raised by the customer", [0.6, 0.8, 0.0, 0.0]),
            chunk("acme", "semantic", 0, "how a customer contests a charge", [1.0, 0.1, 0.0, 0.0]),
            chunk(
                "acme",
                "noise",
                0,
                "office plants need water; the invoice for the plants is in the shed with other receipts",
                [0.0, 0.0, 1.0, 0.0],
            ),
        ]
    )


def _expected_fusion(
    keyword: dict[str, float], vector: dict[str, float], weights: tuple[float, float]
) -> dict[str, float]:
    """min_max per sub-query (0 -> 0.001, single hit -> 1.0), then the weighted arithmetic mean."""

    def normalize(scores: dict[str, float]) -> dict[str, float]:
        low, high = min(scores.values()), max(scores.values())
        if low == high:
            return dict.fromkeys(scores, 1.0)
        return {key: ((s - low) / (high - low)) or 0.001 for key, s in scores.items()}

    nk, nv = normalize(keyword), normalize(vector)
    return {key: weights[0] * nk.get(key, 0.0) + weights[1] * nv.get(key, 0.0) for key in {*nk, *nv}}


@pytest.mark.parametrize(
    ("weights", "expected_first"),
    [((0.5, 0.5), "both"), ((0.9, 0.1), "exact"), ((0.1, 0.9), "semantic")],
)
def test_local_store_hybrid_fuses_like_the_normalization_processor(
    tmp_path: Path, weights: tuple[float, float], expected_first: str
) -> None:
    config = HybridConfig(keyword_weight=weights[0], vector_weight=weights[1], candidates=10)
    with LocalVectorStore(tmp_path / "vectors.db", hybrid=config) as store:
        store.upsert(fillers())
        _hybrid_corpus(store)
        query = {"tenant": "acme", "query_text": "invoice dispute", "query_vector": [1.0, 0.3, 0.0, 0.0]}
        keyword = {h.document_id: h.score for h in store.search(**query, k=10, mode="keyword")}
        vector = {h.document_id: h.score for h in store.search(**query, k=10, mode="vector")}
        hybrid = store.search(**query, k=4, mode="hybrid")

    expected = _expected_fusion(keyword, vector, weights)
    assert set(keyword) == {"exact", "both", "noise"}
    assert hybrid[0].document_id == expected_first
    assert [hit.document_id for hit in hybrid] == sorted(expected, key=lambda d: -expected[d])[:4]
    for hit in hybrid:
        assert hit.score == pytest.approx(expected[hit.document_id])


def test_local_store_hybrid_returns_the_top_k_of_the_fused_ranking(store: LocalVectorStore) -> None:
    _hybrid_corpus(store)
    query = {"tenant": "acme", "query_text": "invoice dispute", "query_vector": [1.0, 0.3, 0, 0]}

    top_two = store.search(**query, k=2)
    all_four = store.search(**query, k=4)

    # Candidates per sub-query do not depend on k, so k only cuts the same ranking shorter.
    assert [(h.document_id, h.score) for h in top_two] == [(h.document_id, h.score) for h in all_four[:2]]
    assert [h.document_id for h in all_four] == ["both", "exact", "semantic", "noise"]
    assert all(0.0 <= hit.score <= 1.0 for hit in all_four)


@pytest.mark.parametrize(
    "query",
    [
        '"kangaroo" OR penguin*',
        "NEAR(",
        "NEAR(kangaroo penguin, 2)",
        "text:kangaroo",
        '"',
        "'",
        "kangaroo\"'",
        "^kangaroo",
        "-kangaroo",
        "kangaroo AND",
        "(kangaroo",
        "{text}: kangaroo",
        "*",
        "OR",
        "NOT kangaroo",
        "kangaroo;DROP TABLE chunks;--",
    ],
)
def test_local_store_keyword_query_text_is_never_fts_syntax(store: LocalVectorStore, query: str) -> None:
    store.upsert(
        [
            chunk("acme", "a", 0, "the kangaroo is a marsupial", [1, 0, 0, 0]),
            chunk("acme", "a", 1, "near the shore", [0, 1, 0, 0]),
            chunk("acme", "a", 2, "a penguin colony", [0, 0, 1, 0]),
        ]
    )

    hits = store.search(tenant="acme", query_text=query, query_vector=None, k=10, mode="keyword")

    words = {w for w in "".join(c if c.isalnum() else " " for c in query.lower()).split()}
    for hit in hits:
        # Only literal words of the query match: "penguin*" is the word "penguin", not a prefix.
        assert words & set(hit.text.split())
    assert store.count("acme") == 3


def test_local_store_prefix_operator_is_not_applied(store: LocalVectorStore) -> None:
    store.upsert([chunk("acme", "a", 0, "penguins everywhere", [1, 0, 0, 0])])

    hits = store.search(tenant="acme", query_text="pengu*", query_vector=None, k=10, mode="keyword")

    assert hits == []


@pytest.mark.parametrize("query", ["", "   ", "the of and", "is it THE", "!!! ???"])
def test_local_store_keyword_search_without_search_words_returns_nothing(store: LocalVectorStore, query: str) -> None:
    store.upsert([chunk("acme", "a", 0, "the of and is it", [1, 0, 0, 0])])

    assert store.search(tenant="acme", query_text=query, query_vector=None, k=5, mode="keyword") == []


def test_local_store_hybrid_with_only_stop_words_ranks_by_vector(store: LocalVectorStore) -> None:
    store.upsert([chunk("acme", "a", 0, "alpha", [1, 0, 0, 0]), chunk("acme", "b", 0, "beta", [0, 1, 0, 0])])

    hits = store.search(tenant="acme", query_text="the", query_vector=[0, 1, 0, 0], k=2)

    # The keyword sub-query matches nothing, so each hit has 0 for it: half of its vector score.
    assert ids(hits) == [("b", 0), ("a", 0)]
    assert hits[0].score == pytest.approx(0.5)
    assert hits[1].score == pytest.approx(0.0005)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_local_store_filters_by_document_ids(store: LocalVectorStore, mode: SearchMode) -> None:
    store.upsert([chunk("acme", doc, 0, f"shared topic {doc}", [1, 0, 0, 0]) for doc in ("a", "b", "c")])

    hits = store.search(
        tenant="acme", query_text="shared topic", query_vector=[1, 0, 0, 0], k=10, mode=mode, document_ids=["b", "c"]
    )
    none = store.search(
        tenant="acme", query_text="shared topic", query_vector=[1, 0, 0, 0], k=10, mode=mode, document_ids=[]
    )

    assert sorted(ids(hits)) == [("b", 0), ("c", 0)]
    assert none == []


def test_local_store_rejects_a_vector_of_another_dimension(store: LocalVectorStore) -> None:
    with pytest.raises(InvalidChunkError, match="dimensions"):
        store.upsert([chunk("acme", "a", 0, "three dims", [1, 0, 0])])
    with pytest.raises(InvalidQueryError, match="dimensions"):
        store.search(tenant="acme", query_text="x", query_vector=[1, 0], k=1)


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ([chunk("acme", "a", 0, "zero", [0, 0, 0, 0])], "zero vector"),
        ([chunk("acme", "a", 0, "nan", [math.nan, 0, 0, 1])], "NaN"),
        ([chunk("acme", "a", 0, "x", [1, 0, 0, 0]), chunk("acme", "a", 0, "y", [1, 0, 0, 0])], "same chunk_index"),
        ([chunk("acme", "a", 0, "x", [1, 0, 0, 0]), chunk("acme", "b", 0, "y", [1, 0, 0])], "dimensions"),
        ([chunk("", "a", 0, "x", [1, 0, 0, 0])], "tenant"),
    ],
)
def test_local_store_rejects_invalid_chunks_and_writes_nothing(
    store: LocalVectorStore, chunks: list[ChunkRecord], message: str
) -> None:
    with pytest.raises(InvalidChunkError, match=message):
        store.upsert(chunks)

    assert store.count("acme") == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query_vector": None, "mode": "hybrid"}, "needs a query_vector"),
        ({"query_vector": None, "mode": "vector"}, "needs a query_vector"),
        ({"query_vector": [0, 0, 0, 0]}, "zero vector"),
        ({"k": 0}, "k must be"),
        ({"k": 1000}, "k must be"),
        ({"mode": "fuzzy"}, "mode must be"),
        ({"tenant": ""}, "tenant"),
        ({"document_ids": "abc"}, "not a string"),
    ],
)
def test_local_store_rejects_invalid_searches(store: LocalVectorStore, kwargs: dict, message: str) -> None:
    request = {"tenant": "acme", "query_text": "x", "query_vector": [1, 0, 0, 0], "k": 3} | kwargs
    with pytest.raises(InvalidQueryError, match=message):
        store.search(**request)


def test_local_store_is_safe_to_share_between_threads(store: LocalVectorStore) -> None:
    # A writer keeps swapping one document between two versions while readers search it: a
    # reader must always see one whole version (3 "alpha" chunks or 2 "beta" chunks), never a mix.
    alpha = [chunk("acme", "doc", i, f"alpha part {i}", [1, 0, 0, 0]) for i in range(3)]
    beta = [chunk("acme", "doc", i, f"beta part {i}", [0, 1, 0, 0]) for i in range(2)]
    store.upsert(alpha)
    errors: list[BaseException] = []
    seen: set[tuple[str, ...]] = set()
    stop = threading.Event()

    rounds = 0

    def writer() -> None:
        nonlocal rounds
        deadline = time.monotonic() + 10
        try:
            # Keep writing until the readers have met both versions (or give up after 10 s).
            while rounds < 40 or (len(seen) < 2 and time.monotonic() < deadline):
                store.upsert(beta if rounds % 2 == 0 else alpha)
                store.upsert([chunk("acme", f"extra-{rounds}", 0, "extra part", [0, 0, 1, 0])])
                rounds += 1
            store.upsert(alpha)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    def reader(mode: str) -> None:
        try:
            while not stop.is_set():
                hits = store.search(
                    tenant="acme", query_text="part", query_vector=[1, 1, 0, 0], k=10, mode=mode, document_ids=["doc"]
                )
                versions = tuple(sorted({hit.text.split()[0] for hit in hits}))
                assert (versions, len(hits)) in {(("alpha",), 3), (("beta",), 2)}, hits
                seen.add(versions)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(m,)) for m in ALL_MODES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors[0]
    assert store.count("acme") == 3 + rounds
    assert seen == {("alpha",), ("beta",)}  # the readers saw both versions


def test_local_store_refuses_work_after_close(tmp_path: Path) -> None:
    store = LocalVectorStore(tmp_path / "vectors.db")
    store.close()

    with pytest.raises(VectorStoreError, match="closed"):
        store.count("acme")
