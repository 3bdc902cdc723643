"""Search latency of the embedded vector store at 100,000 chunks: ANN (faiss IVF) against exact.

Builds a store in a temporary folder with one tenant of ``--chunks`` chunks (384 dimensions),
then times hybrid, vector and keyword searches through two handles on the same file: the
default one (faiss IVF above 20,000 chunks) and one with ``ann_min_chunks=None`` (exact numpy
search, the baseline). Queries alternate between the two so both see the same machine load.

Data, no model needed:

* text: each document is one wiki-qa article; its chunks are words sampled from that article's
  word stream (so BM25 sees realistic postings: an article's topic words are frequent in its
  own chunks, function words everywhere);
* vectors: random unit vectors clustered the way embeddings are: a random direction per
  article, a document direction near it, each chunk near its document;
* queries: wiki-qa questions as the text, a vector near the question's article direction.

``.venv/bin/python -m bench.search_scale`` (about 2-4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.common import DATASET, machine
from strata.retrieval import ChunkRecord, LocalVectorStore, SearchMode

TENANT = "bench"
DIMENSION = 384
CHUNKS_PER_DOCUMENT = 100
WORDS_PER_CHUNK = 120
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


@dataclass(frozen=True)
class Query:
    text: str
    vector: list[float]


@dataclass(frozen=True)
class Timing:
    p50_ms: float
    p99_ms: float


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def build(store: LocalVectorStore, chunks: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], float]:
    """Fill the store; returns each article's direction and the seconds it took."""
    articles = sorted((DATASET / "documents").glob("*.txt"))
    words = {path.name: _WORD.findall(path.read_text(encoding="utf-8", errors="replace")) for path in articles}
    directions = dict(zip(words, _unit_rows(rng.standard_normal((len(words), DIMENSION))), strict=True))
    names = list(words)
    began = time.perf_counter()
    documents = (chunks + CHUNKS_PER_DOCUMENT - 1) // CHUNKS_PER_DOCUMENT
    for number in range(documents):
        article = names[number % len(names)]
        stream = words[article]
        count = min(CHUNKS_PER_DOCUMENT, chunks - number * CHUNKS_PER_DOCUMENT)
        document_direction = _unit_rows((directions[article] + rng.standard_normal(DIMENSION) * 0.05)[None])[0]
        vectors = _unit_rows(document_direction + rng.standard_normal((count, DIMENSION)) * 0.05)
        picks = rng.integers(0, len(stream), size=(count, WORDS_PER_CHUNK))
        store.upsert(
            [
                ChunkRecord(
                    tenant=TENANT,
                    document_id=f"doc-{number:05d}",
                    chunk_index=i,
                    text=" ".join(stream[j] for j in picks[i]),
                    vector=vectors[i].tolist(),
                    source_key=f"tenants/{TENANT}/{article}",
                    title=article,
                    char_start=0,
                    char_end=1,
                    metadata={"article": article},
                )
                for i in range(count)
            ]
        )
    return directions, time.perf_counter() - began


def queries(directions: dict[str, np.ndarray], count: int, rng: np.random.Generator) -> list[Query]:
    rows = [json.loads(line) for line in (DATASET / "qa.jsonl").read_text().splitlines() if line.strip()]
    rows = [row for row in rows if row["document"] in directions]
    picked = [rows[i] for i in rng.choice(len(rows), size=count, replace=len(rows) < count)]
    result = []
    for row in picked:
        vector = _unit_rows((directions[row["document"]] + rng.standard_normal(DIMENSION) * 0.05)[None])[0]
        result.append(Query(row["question"], vector.tolist()))
    return result


def timing(samples: list[float]) -> Timing:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return Timing(statistics.median(ordered) * 1000, p99 * 1000)


def run(chunks: int, count: int, k: int, out: Path | None) -> str:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vectors.db"
        with LocalVectorStore(path) as ann, LocalVectorStore(path, ann_min_chunks=None) as exact:
            directions, build_s = build(ann, chunks, rng)
            began = time.perf_counter()
            ann.warm(TENANT)
            ann_warm_s = time.perf_counter() - began
            began = time.perf_counter()
            exact.warm(TENANT)
            exact_warm_s = time.perf_counter() - began
            workload = queries(directions, count, rng)
            results: dict[tuple[str, str], list[float]] = {}
            overlap: dict[str, list[float]] = {}
            for mode in (SearchMode.HYBRID, SearchMode.VECTOR, SearchMode.KEYWORD):
                for query in workload:
                    hits = {}
                    for name, store in (("ann", ann), ("exact", exact)):
                        began = time.perf_counter()
                        found = store.search(
                            tenant=TENANT, query_text=query.text, query_vector=query.vector, k=k, mode=mode
                        )
                        results.setdefault((mode.value, name), []).append(time.perf_counter() - began)
                        hits[name] = {(h.document_id, h.chunk_index) for h in found}
                    overlap.setdefault(mode.value, []).append(
                        len(hits["ann"] & hits["exact"]) / max(len(hits["exact"]), 1)
                    )
            count_chunks = ann.count(TENANT)
    lines = [
        f"## Embedded vector store at {count_chunks:,} chunks: faiss IVF against exact search",
        "",
        f"`.venv/bin/python -m bench.search_scale --chunks {chunks} --queries {count} --k {k}` "
        f"({datetime.now(UTC):%Y-%m-%d}). Machine: {machine()}.",
        f"One tenant, {count_chunks:,} chunks of {WORDS_PER_CHUNK} words sampled from wiki-qa articles, "
        f"{DIMENSION}-dimension clustered random unit vectors; {count} wiki-qa questions per mode, k={k}, "
        "hybrid candidates 50 per sub-query. Both columns search the same file in the same run, one "
        "query after the other (ANN: `LocalVectorStore(path)`; exact: `ann_min_chunks=None`).",
        "",
        "| mode | ANN p50 | ANN p99 | exact p50 | exact p99 | p50 exact / ANN | top-k shared with exact |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode in ("hybrid", "vector", "keyword"):
        fast, slow = timing(results[(mode, "ann")]), timing(results[(mode, "exact")])
        lines.append(
            f"| {mode} | {fast.p50_ms:.1f} ms | {fast.p99_ms:.1f} ms | {slow.p50_ms:.1f} ms | {slow.p99_ms:.1f} ms "
            f"| {slow.p50_ms / fast.p50_ms:.2f}x | {100 * statistics.mean(overlap[mode]):.1f} % |"
        )
    lines += [
        "",
        f"Building the store (1 transaction per {CHUNKS_PER_DOCUMENT}-chunk document): {build_s:.1f} s. "
        f"First load of the tenant's vectors: {ann_warm_s:.1f} s with the IVF index trained and filled, "
        f"{exact_warm_s:.1f} s exact only (paid once per process, or at `warm()`; later writes are applied "
        "incrementally).",
        "",
    ]
    report = "\n".join(lines)
    if out is not None:
        out.write_text(report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    print(run(args.chunks, args.queries, args.k, args.out))


if __name__ == "__main__":
    main()
