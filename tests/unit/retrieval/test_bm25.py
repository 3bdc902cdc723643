"""The in-memory BM25 of large tenants scores as FTS5 does, and keeps up with writes."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from strata.retrieval import ChunkRecord, LocalVectorStore
from strata.retrieval.bm25 import KeywordIndex, Stemmer

WORDS = [
    "kangaroo",
    "kangaroos",
    "hopping",
    "hops",
    "pouch",
    "joey",
    "marsupial",
    "grass",
    "eats",
    "eating",
    "desert",
    "running",
    "runs",
    "australia",
    "island",
    "koala",
    "eucalyptus",
    "leaves",
    "sleeping",
    "sleeps",
    "wombat",
    "burrow",
    "digging",
    "café",
    "naïve",
]


def chunk(document: int, index: int, text: str, rng: random.Random) -> ChunkRecord:
    vector = [rng.random() + 0.01 for _ in range(8)]
    return ChunkRecord(
        tenant="acme",
        document_id=f"d{document}",
        chunk_index=index,
        text=text,
        vector=vector,
        source_key=f"tenants/acme/d{document}.txt",
        title=f"D{document}",
        char_start=0,
        char_end=len(text),
    )


def corpus(rng: random.Random, documents: int = 60, chunks: int = 5) -> list[ChunkRecord]:
    return [
        chunk(d, i, " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40))), rng)
        for d in range(documents)
        for i in range(chunks)
    ]


@pytest.fixture
def stores(tmp_path: Path) -> tuple[LocalVectorStore, LocalVectorStore]:
    in_memory = LocalVectorStore(tmp_path / "a.db", ann_min_chunks=50)  # 300 chunks: the in-memory path
    fts5 = LocalVectorStore(tmp_path / "b.db", ann_min_chunks=None)
    yield in_memory, fts5
    in_memory.close()
    fts5.close()


def keyword(store: LocalVectorStore, query: str, **kwargs: object) -> list[tuple[str, int, float]]:
    hits = store.search(tenant="acme", query_text=query, query_vector=None, k=10, mode="keyword", **kwargs)
    return [(hit.document_id, hit.chunk_index, hit.score) for hit in hits]


def assert_same_ranking(ours: list[tuple[str, int, float]], theirs: list[tuple[str, int, float]]) -> None:
    """The same hits in the same order with the same scores; hits whose scores tie (to the last
    digits, the order of a float sum) may swap."""
    assert np.allclose([hit[2] for hit in ours], [hit[2] for hit in theirs], rtol=1e-6)
    for mine, fts5 in zip(ours, theirs, strict=True):
        assert mine[:2] == fts5[:2] or math.isclose(mine[2], fts5[2], rel_tol=1e-9), (mine, fts5)


QUERIES = ["kangaroo hopping", "the koalas sleep in eucalyptus", "cafe naive", "wombats digging burrows", "desert"]


def test_in_memory_bm25_ranks_and_scores_as_fts5(stores: tuple[LocalVectorStore, LocalVectorStore]) -> None:
    in_memory, fts5 = stores
    chunks = corpus(random.Random(3))
    in_memory.upsert(chunks)
    fts5.upsert(chunks)

    for query in QUERIES:
        assert_same_ranking(keyword(in_memory, query), keyword(fts5, query))
    assert in_memory._cache["acme"].keywords is not None, "the in-memory path answered"


def test_in_memory_bm25_keeps_up_with_replacements_deletions_and_filters(
    stores: tuple[LocalVectorStore, LocalVectorStore],
) -> None:
    in_memory, fts5 = stores
    rng = random.Random(5)
    chunks = corpus(rng)
    for store in stores:
        store.upsert(chunks)
    keyword(in_memory, "kangaroo")  # builds the postings

    replacement = [chunk(7, 0, "a platypus lays eggs beside the kangaroo", rng)]
    for store in stores:
        store.upsert(replacement)
        store.delete_document("acme", "d8")

    for query in ("platypus eggs", "kangaroo", "pouch joey"):
        assert_same_ranking(keyword(in_memory, query), keyword(fts5, query))
    assert keyword(in_memory, "platypus")[0][:2] == ("d7", 0)
    assert all(hit[0] != "d8" for hit in keyword(in_memory, "kangaroo"))
    assert {hit[0] for hit in keyword(in_memory, "kangaroo", document_ids=["d3", "d4"])} <= {"d3", "d4"}


def test_words_are_stemmed_and_folded_by_sqlites_own_tokenizer() -> None:
    stems = Stemmer().terms(["running", "runs", "café", "Kangaroos"])
    assert stems["running"] == stems["runs"] == ("run",)
    assert stems["café"] == ("cafe",)
    index = KeywordIndex(Stemmer())
    index.add(0, ["Kangaroos hop.", "A koala sleeps."])
    positions, scores = index.search(index.query_terms("kangaroo"), 5, None)
    assert positions.tolist() == [0] and scores[0] > 0


def test_a_hybrid_hit_carries_the_bm25_score_of_its_keyword_part(
    stores: tuple[LocalVectorStore, LocalVectorStore],
) -> None:
    for store in stores:
        store.upsert(corpus(random.Random(11)))
        bm25 = {(h[0], h[1]): h[2] for h in keyword(store, "koala sleeping")}
        hits = store.search(tenant="acme", query_text="koala sleeping", query_vector=[1.0] * 8, k=10, mode="hybrid")

        matched = [hit for hit in hits if hit.keyword_score is not None]
        assert matched
        for hit in matched:
            key = (hit.document_id, hit.chunk_index)
            assert key not in bm25 or hit.keyword_score == pytest.approx(bm25[key])
