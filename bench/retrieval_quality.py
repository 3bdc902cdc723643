"""Retrieval quality on wiki-qa: does the search find the article a question was written from?

Indexes every article of ../shared/datasets/wiki-qa with the production parts (parse, chunk with
the all-MiniLM-L6-v2 tokenizer, embed with all-MiniLM-L6-v2, the embedded vector store), then
asks distinct questions in each search mode and checks the rank of the first chunk from the
question's own article (byte-identical copies of an article count as the same article). Hybrid
is measured twice on the same index in the same run: with ``HybridConfig``'s defaults and with
``WIKI_QA_TUNED``, which was tuned on the ``tuning`` half of the articles, so the figures to
quote are the ``held-out`` half's (the default split).

The index, metrics and split are ``strata eval``'s (strata_local/evaluate.py).

    .venv/bin/python -m bench.retrieval_quality [--questions 600] [--split held-out] [--no-floor]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.answer_quality import OFF_TOPIC_QUESTIONS
from bench.common import DATASET, machine
from strata.config import Settings
from strata.ingest import Chunker
from strata.retrieval import WIKI_QA_TUNED, HybridConfig, LocalVectorStore, QueryEmbedder, SearchMode
from strata_local.evaluate import (
    CUTOFFS,
    MODES,
    SEED,
    SPLITS,
    SentenceTransformersEmbedder,
    index_documents,
    load_questions,
    mode_ranks,
    retrieval_metrics,
    select_questions,
)

TENANT = "bench"
FLOORS = (0.25, 0.30, 0.35, 0.40, 0.45)


def relevance_floor_table(store: LocalVectorStore, embedder: QueryEmbedder, questions: list[str]) -> str:
    """How a floor on the best hit's cosine similarity (``Settings.retrieval_min_similarity``)
    splits the corpus's questions from off-topic ones: the share of each it would refuse."""

    def best(texts: list[str]) -> list[float]:
        vectors = embedder.embed(texts)
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
    parser.add_argument("--split", choices=SPLITS, default="held-out", help="the article half to ask about")
    parser.add_argument("--no-floor", action="store_true", help="skip the relevance-floor table")
    args = parser.parse_args()
    settings = Settings()
    questions = select_questions(load_questions(DATASET), args.split, args.questions)

    embedder = SentenceTransformersEmbedder()
    chunker = Chunker.for_embedding_model(settings.chunk_tokens, settings.chunk_overlap_tokens)
    with tempfile.TemporaryDirectory() as workdir, LocalVectorStore(Path(workdir) / "vectors.db") as store:
        began = time.perf_counter()
        same_content = index_documents(
            store, embedder, chunker, (DATASET / "documents").glob("*.txt"), tenant=TENANT, progress=True
        )
        indexed_s = time.perf_counter() - began
        vectors = embedder.embed([q.text for q in questions])
        rows: list[tuple[str, dict[str, float], float]] = []
        runs = [(mode.value, mode, HybridConfig()) for mode in MODES]
        runs.append(("hybrid, WIKI_QA_TUNED", SearchMode.HYBRID, WIKI_QA_TUNED))
        for label, mode, hybrid in runs:
            store.hybrid = hybrid
            began = time.perf_counter()
            ranks = mode_ranks(store, questions, vectors, same_content, mode, tenant=TENANT)
            rows.append((label, retrieval_metrics(ranks), (time.perf_counter() - began) / len(questions)))
        store.hybrid = HybridConfig()
        floor = None if args.no_floor else relevance_floor_table(store, embedder, [q.text for q in questions])
        chunks = store.count(TENANT)

    print(f"machine: {machine()}")
    print(
        f"corpus: {len(same_content)} articles, {chunks} chunks (indexed in {indexed_s:.0f} s); "
        f"{len(questions)} distinct questions of the {args.split} split, seed {SEED}"
    )
    print(f"hybrid: {HybridConfig()}; tuned: {WIKI_QA_TUNED}")
    print("| mode | " + " | ".join(f"hit@{c}" for c in CUTOFFS) + " | MRR@10 | search latency (mean) |")
    print("|---" * (len(CUTOFFS) + 3) + "|")
    for label, metrics, seconds in rows:
        cells = " | ".join(f"{metrics[f'hit@{c}']:.3f}" for c in CUTOFFS)
        print(f"| {label} | {cells} | {metrics['mrr']:.3f} | {seconds * 1000:.1f} ms |")
    if floor:
        print()
        print(floor)


if __name__ == "__main__":
    main()
