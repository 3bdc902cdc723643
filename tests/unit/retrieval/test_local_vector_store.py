from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
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
from strata.retrieval.base import _search_request
from strata.retrieval.local import SCHEMA_VERSION

ALL_MODES = list(SearchMode)
# The fusion these tests' expected figures are worked out for (min-max, equal weights), pinned so
# that tuning the defaults in strata.retrieval.hybrid does not change what they check.
MIN_MAX = HybridConfig(keyword_weight=0.5, vector_weight=0.5, candidates=50, fusion="min_max")


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
    with LocalVectorStore(tmp_path / "vectors.db", hybrid=MIN_MAX) as opened:
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
    config = HybridConfig(keyword_weight=weights[0], vector_weight=weights[1], candidates=10, fusion="min_max")
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


# -- headings, metadata, schema migration ----------------------------------------------------

_SCHEMA_1 = """
CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, document_id TEXT NOT NULL, chunk_index INTEGER NOT NULL,
    text TEXT NOT NULL, source_key TEXT NOT NULL, title TEXT NOT NULL, page INTEGER,
    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL, vector BLOB NOT NULL,
    UNIQUE (tenant, document_id, chunk_index)
);
CREATE TABLE tenant_versions (tenant TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2');
INSERT INTO store_meta VALUES ('schema_version', '1'), ('dimension', '4');
INSERT INTO tenant_versions VALUES ('acme', 1);
"""


def test_local_store_migrates_a_schema_1_file_without_losing_chunks(tmp_path: Path) -> None:
    path = tmp_path / "vectors.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_SCHEMA_1)
        vector = np.asarray([1, 0, 0, 0], dtype=np.float32).tobytes()
        conn.execute(
            "INSERT INTO chunks VALUES (7, 'acme', 'old', 0, 'walrus tusks', 'k', 'Old', NULL, 0, 12, ?)", (vector,)
        )
        conn.execute("INSERT INTO chunks_fts (rowid, text) VALUES (7, 'walrus tusks')")
    conn.close()

    with LocalVectorStore(path) as store:
        old = store.search(tenant="acme", query_text="walrus", query_vector=[1, 0, 0, 0], k=5)
        store.upsert([chunk("acme", "new", 0, "walrus pups", [1, 0, 0, 0]).model_copy(update={"metadata": {"a": "b"}})])
        both = store.search(tenant="acme", query_text="walrus", query_vector=[1, 0, 0, 0], k=5, mode="keyword")
        filtered = store.search(tenant="acme", query_text="walrus", query_vector=[1, 0, 0, 0], k=5, filters={"a": "b"})
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()[0]
    conn.close()

    assert [(h.document_id, h.heading_path, h.metadata) for h in old] == [("old", [], {})]
    assert sorted(ids(both)) == [("new", 0), ("old", 0)]
    assert ids(filtered) == [("new", 0)]
    assert version == SCHEMA_VERSION == "2"


def test_local_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "vectors.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_SCHEMA_1.replace("('schema_version', '1')", "('schema_version', '9')"))
    conn.close()

    with pytest.raises(VectorStoreError, match="schema 9"):
        LocalVectorStore(path)


# -- the ANN index ---------------------------------------------------------------------------


def _clustered(count: int, seed: int = 0, tenant: str = "acme") -> list[ChunkRecord]:
    """Chunks in 8 documents, each document's vectors near its own random direction."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, 16))
    chunks = []
    for i in range(count):
        doc = i % 8
        vector = centres[doc] + 0.1 * rng.standard_normal(16)
        chunks.append(
            chunk(tenant, f"doc-{doc}", i // 8, f"part {i} of topic{doc}", vector.tolist()).model_copy(
                update={"metadata": {"parity": str(i % 2)}}
            )
        )
    return chunks


@pytest.fixture
def ann_pair(tmp_path: Path) -> Iterator[tuple[LocalVectorStore, LocalVectorStore]]:
    """Two handles on one file: IVF from 200 chunks, and exact only."""
    pytest.importorskip("faiss")  # the ``local`` extra; without it every search is exact
    path = tmp_path / "vectors.db"
    with (
        LocalVectorStore(path, hybrid=MIN_MAX, ann_min_chunks=200, ann_nprobe=64) as ann,
        LocalVectorStore(path, hybrid=MIN_MAX, ann_min_chunks=None) as exact,
    ):
        ann.upsert(_clustered(800))
        yield ann, exact


def _query(seed: int) -> list[float]:
    return np.random.default_rng(seed).standard_normal(16).tolist()


@pytest.mark.parametrize("mode", ALL_MODES)
def test_local_store_ann_search_agrees_with_exact_search(
    ann_pair: tuple[LocalVectorStore, LocalVectorStore], mode: SearchMode
) -> None:
    ann, exact = ann_pair
    for seed in range(5):
        request = {"tenant": "acme", "query_text": "topic3 part", "query_vector": _query(seed), "k": 10, "mode": mode}
        fast, slow = ann.search(**request), exact.search(**request)
        # nprobe 64 of 28 lists probes them all: the IVF must then return exactly the exact top k.
        assert ids(fast) == ids(slow)
        assert [h.score for h in fast] == pytest.approx([h.score for h in slow], abs=1e-5)
    if mode is not SearchMode.KEYWORD:  # keyword search never touches the vector index
        assert ann._cache["acme"].ann is not None
        assert exact._cache["acme"].ann is None


@pytest.mark.parametrize("mode", [SearchMode.VECTOR, SearchMode.HYBRID])
def test_local_store_ann_search_applies_filters(
    ann_pair: tuple[LocalVectorStore, LocalVectorStore], mode: SearchMode
) -> None:
    ann, _ = ann_pair
    hits = ann.search(
        tenant="acme", query_text="part", query_vector=_query(1), k=20, mode=mode,
        document_ids=["doc-2", "doc-4"], filters={"parity": "0"},
    )  # fmt: skip

    assert len(hits) == 20
    assert {h.document_id for h in hits} <= {"doc-2", "doc-4"}
    assert {h.metadata["parity"] for h in hits} == {"0"}


def test_local_store_ann_index_is_updated_in_place_by_writes(
    ann_pair: tuple[LocalVectorStore, LocalVectorStore],
) -> None:
    ann, exact = ann_pair
    query = {"tenant": "acme", "query_text": "", "k": 5, "mode": "vector"}
    ann.search(query_vector=_query(0), **query)
    index = ann._cache["acme"]
    trained = index.ann

    # Another handle (think: the ingest worker) adds a document right on the query and deletes one.
    target = _query(9)
    exact.upsert([chunk("acme", "fresh", i, f"fresh {i}", target) for i in range(3)])
    exact.delete_document("acme", "doc-0")
    hits = ann.search(query_vector=target, **query)
    remaining = ann.search(query_vector=_query(0), **(query | {"k": 100}))

    assert ids(hits)[:3] == [("fresh", 0), ("fresh", 1), ("fresh", 2)]
    assert "doc-0" not in {h.document_id for h in remaining}
    assert ann._cache["acme"] is index and index.ann is trained  # caught up, not rebuilt
    assert index.ann.ntotal == 800 - 100 + 3


# -- crash safety ----------------------------------------------------------------------------

_WRITER = """
import sys
from strata.retrieval import ChunkRecord, LocalVectorStore

store = LocalVectorStore(sys.argv[1])
for n in range(10_000):
    chunks = [
        ChunkRecord(tenant="acme", document_id=f"doc-{n}", chunk_index=i, text=f"chunk {i} of doc {n}",
                    vector=[1.0, float(i), 0.0, float(n)], source_key="k", title="t", char_start=0, char_end=1,
                    metadata={"n": str(n)})
        for i in range(50)
    ]
    store.upsert(chunks)
    print(n, flush=True)  # committed: upsert has returned
"""


def test_local_store_keeps_every_committed_document_whole_after_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "vectors.db"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True, env=env)
    assert writer.stdout is not None
    committed = -1
    while committed < 8:  # let it commit a few documents, then kill it in the middle of the next ones
        line = writer.stdout.readline()
        assert line, "the writer died before committing"
        committed = int(line)
    time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)

    with LocalVectorStore(path) as reopened:
        conn = reopened._conn()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        per_document = dict(conn.execute("SELECT document_id, COUNT(*) FROM chunks GROUP BY document_id").fetchall())
        fts_rows = conn.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
        hits = reopened.search(tenant="acme", query_text="chunk", query_vector=[1, 0, 0, 1], k=100, filters={"n": "3"})

    assert {f"doc-{n}" for n in range(committed + 1)} <= set(per_document)  # nothing committed is lost
    assert set(per_document.values()) == {50}  # and no document is half written
    assert fts_rows == sum(per_document.values())
    assert len(hits) == 50


def test_local_store_a_search_behind_the_shared_index_scores_its_own_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "vectors.db"
    with LocalVectorStore(path, hybrid=MIN_MAX) as store, LocalVectorStore(path) as writer:
        store.upsert([chunk("acme", "old", 0, "old", [1, 0, 0, 0]), chunk("acme", "kept", 0, "kept", [0, 1, 0, 0])])
        vector_search = {"tenant": "acme", "query_text": "", "query_vector": [1, 0, 0, 0], "k": 10, "mode": "vector"}
        store.search(**vector_search)  # the shared index is loaded at this version
        request = _search_request("acme", None, [1, 0, 0, 0], 10, "vector", None)
        with store._read() as conn:
            conn.execute("SELECT COUNT(*) FROM chunks").fetchone()  # this reader's snapshot starts here
            writer.delete_document("acme", "old")
            writer.upsert([chunk("acme", "new", 0, "new", [1, 0, 0, 0])])
            # Another thread's search moves the shared index past the snapshot.
            other = threading.Thread(target=store.search, kwargs=vector_search)
            other.start()
            other.join()
            behind, _ = store._rank(conn, request)
            documents = {row[0]: row[1] for row in conn.execute("SELECT id, document_id FROM chunks")}

    assert store._cache == {}  # closed
    # The snapshot still has "old" (deleted later) and not "new" (written later).
    assert [documents[chunk_id] for chunk_id, _ in behind] == ["old", "kept"]
