"""Retrieval quality on wiki-qa: does the search find the article a question was written from?

Indexes every article of ../shared/datasets/wiki-qa with the production parts (parse, chunk with
the all-MiniLM-L6-v2 tokenizer, embed with all-MiniLM-L6-v2, the embedded vector store), then
asks each distinct question in each search mode and checks the rank of the first chunk from the
question's own article (byte-identical copies of an article count as the same article).

    .venv/bin/python -m bench.retrieval_quality [--questions 600] [--k 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tempfile
import time
from pathlib import Path

from bench.answer_quality import OFF_TOPIC_QUESTIONS
from bench.common import DATASET, machine
from model_endpoint.backends.sentence_transformers import SentenceTransformersEmbeddingBackend
from strata.config import Settings
from strata.documents import parse_source_key
from strata.ingest import Chunker, parse_document
from strata.ingest.pipeline import chunk_records
from strata.retrieval import LocalVectorStore, SearchMode

TENANT = "bench"


def index(store: LocalVectorStore, model: SentenceTransformersEmbeddingBackend, chunker: Chunker) -> dict[str, str]:
    """Index every article; returns document id → content hash (to treat copies as one article)."""
    same_content: dict[str, str] = {}
    for path in sorted((DATASET / "documents").glob("*.txt")):
        data = path.read_bytes()
        source = parse_source_key(f"tenants/{TENANT}/{path.name}")
        same_content[source.document_id] = hashlib.sha256(data).hexdigest()
        parsed = parse_document(data, key=source.key)
        chunks = chunker.chunk(parsed)
        vectors = model.embed([c.text for c in chunks], normalize=True, truncate=True)
        store.upsert(chunk_records(source, parsed.title, chunks, vectors))
    return same_content


FLOORS = (0.25, 0.30, 0.35, 0.40, 0.45)


def relevance_floor_table(
    store: LocalVectorStore, model: SentenceTransformersEmbeddingBackend, questions: list[str]
) -> str:
    """How a floor on the best hit's cosine similarity (``Settings.retrieval_min_similarity``)
    splits the corpus's questions from off-topic ones: the share of each it would refuse."""

    def best(texts: list[str]) -> list[float]:
        vectors = model.embed(texts, normalize=True, truncate=True)
        return [
            max(h.similarity or -1.0 for h in store.search(tenant=TENANT, query_text=t, query_vector=v, k=5))
            for t, v in zip(texts, vectors, strict=True)
        ]

    on, off = best(questions), best(list(OFF_TOPIC_QUESTIONS))
    rows = [f"| floor | corpus questions refused (of {len(on)}) | off-topic questions refused (of {len(off)}) |"]
    rows.append("|---|---|---|")
    for floor in FLOORS:
        refused_on, refused_off = sum(s < floor for s in on) / len(on), sum(s < floor for s in off) / len(off)
        rows.append(f"| {floor:.2f} | {refused_on:.3f} | {refused_off:.3f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=600, help="distinct questions, sampled with a fixed seed")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    rows = [json.loads(line) for line in (DATASET / "qa.jsonl").read_text().splitlines() if line.strip()]
    by_question = {row["question"]: row["document"] for row in rows}
    questions = sorted(by_question)
    random.Random(7).shuffle(questions)
    questions = questions[: args.questions]

    model = SentenceTransformersEmbeddingBackend()
    model.load()
    chunker = Chunker.for_embedding_model(settings.chunk_tokens, settings.chunk_overlap_tokens)
    with tempfile.TemporaryDirectory() as workdir, LocalVectorStore(Path(workdir) / "vectors.db") as store:
        began = time.perf_counter()
        same_content = index(store, model, chunker)
        indexed_s = time.perf_counter() - began
        vectors = model.embed(questions, normalize=True, truncate=True)
        results: dict[SearchMode, list[int | None]] = {}
        seconds: dict[SearchMode, float] = {}
        for mode in SearchMode:
            ranks: list[int | None] = []
            began = time.perf_counter()
            for question, vector in zip(questions, vectors, strict=True):
                expected = same_content[parse_source_key(f"tenants/{TENANT}/{by_question[question]}").document_id]
                hits = store.search(tenant=TENANT, query_text=question, query_vector=vector, k=args.k, mode=mode)
                found = [same_content[h.document_id] for h in hits]
                ranks.append(found.index(expected) + 1 if expected in found else None)
            seconds[mode] = time.perf_counter() - began
            results[mode] = ranks
        floor = relevance_floor_table(store, model, questions)
        chunks = store.count(TENANT)

    print(f"machine: {machine()}")
    print(
        f"corpus: {len(same_content)} articles, {chunks} chunks (indexed in {indexed_s:.0f} s); "
        f"{len(questions)} distinct questions, seed 7"
    )
    print(f"| mode | hit@1 | hit@{args.k} | MRR@{args.k} | search latency (mean) |")
    print("|---|---|---|---|---|")
    for mode, ranks in results.items():
        hit1 = sum(r == 1 for r in ranks) / len(ranks)
        hitk = sum(r is not None for r in ranks) / len(ranks)
        mrr = sum(1 / r for r in ranks if r) / len(ranks)
        print(f"| {mode.value} | {hit1:.3f} | {hitk:.3f} | {mrr:.3f} | {seconds[mode] / len(ranks) * 1000:.1f} ms |")
    print()
    print(floor)


if __name__ == "__main__":
    main()
