"""Embedding throughput and retrieval quality: sentence-transformers vs the ONNX Runtime backends.

The same wiki-qa chunk texts (the production parser and ``Chunker.for_embedding_model(200, 40)``,
the first ``--chunks`` of the corpus in file order) are embedded by

* ``sentence-transformers``: the server's backend today (torch, fp32), the baseline, same run;
* ``onnx fp32``: the ONNX export of the same weights;
* ``onnx int8``: the export after ``quantize_dynamic``, with and without length sorting.

Texts are sent as the ingest worker sends them: requests of ``--request-size`` texts (the model
server's client batch size, 32) in corpus order, normalized and truncated. Throughput is chunks/s
of the whole set, median of ``--runs`` runs after one warm-up request.

``--quality`` also indexes all of wiki-qa with each backend named in ``--quality-backends`` and
ranks the held-out split's questions with ``strata_local.evaluate``'s metric code (hit@k and
MRR@10 of the question's own article, vector and hybrid search; keyword search does not use the
vectors). ``--st-vectors DIR`` reuses sentence-transformers chunk vectors cached in ``DIR``
(``chunks.json`` + ``chunk_vectors.npy``) when their texts are exactly this run's chunks.

The export must exist: ``python -m model_endpoint.onnx_export``.

    .venv/bin/python -m bench.embed_onnx [--chunks 1000] [--runs 3] [--quality] [--st-vectors DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import DATASET, machine, median
from model_endpoint.backends.base import EmbeddingBackend
from strata.retrieval import ChunkRecord, LocalVectorStore, SearchMode
from strata_local.evaluate import CUTOFFS, SEED, load_questions, mode_ranks, retrieval_metrics, select_questions

TENANT = "bench"
QUALITY_MODES = (SearchMode.VECTOR, SearchMode.HYBRID)


@dataclass(frozen=True, slots=True)
class Corpus:
    """wiki-qa chunked with the production parts; ``records`` carry no vectors yet (empty lists)."""

    records: list[ChunkRecord]
    same_content: dict[str, str]  # document id -> content hash (identical copies count as one article)


def build_corpus() -> Corpus:
    from strata.config import Settings
    from strata.documents import parse_source_key
    from strata.ingest import Chunker, parse_document
    from strata.ingest.pipeline import chunk_records

    settings = Settings()
    chunker = Chunker.for_embedding_model(settings.chunk_tokens, settings.chunk_overlap_tokens)
    records: list[ChunkRecord] = []
    same_content: dict[str, str] = {}
    for path in sorted((DATASET / "documents").glob("*.txt")):
        data = path.read_bytes()
        source = parse_source_key(f"tenants/{TENANT}/{path.name}")
        same_content[source.document_id] = hashlib.sha256(data).hexdigest()
        parsed = parse_document(data, key=source.key)
        chunks = chunker.chunk(parsed)
        records.extend(chunk_records(source, parsed.title, chunks, [[] for _ in chunks]))
    return Corpus(records, same_content)


def backends(selected: Sequence[str]) -> dict[str, Callable[[], EmbeddingBackend]]:
    from model_endpoint.backends.onnx_embedding import OnnxEmbeddingBackend
    from model_endpoint.backends.sentence_transformers import SentenceTransformersEmbeddingBackend

    factories: dict[str, Callable[[], EmbeddingBackend]] = {
        "sentence-transformers": SentenceTransformersEmbeddingBackend,
        "onnx fp32": lambda: OnnxEmbeddingBackend(quantized=False),
        "onnx int8": lambda: OnnxEmbeddingBackend(quantized=True),
        "onnx int8, unsorted": lambda: OnnxEmbeddingBackend(quantized=True, sort_by_length=False),
    }
    return {name: factories[name] for name in selected}


def embed_in_requests(backend: EmbeddingBackend, texts: Sequence[str], request_size: int) -> np.ndarray:
    vectors: list[list[float]] = []
    for start in range(0, len(texts), request_size):
        vectors.extend(backend.embed(texts[start : start + request_size], normalize=True, truncate=True))
    return np.asarray(vectors, dtype=np.float32)


def throughput(
    backend: EmbeddingBackend, texts: Sequence[str], request_size: int, runs: int
) -> tuple[float, list[float], np.ndarray]:
    """Median chunks/s, each run's, and the vectors of the last run."""
    backend.embed(texts[:request_size], normalize=True, truncate=True)  # warm-up: allocations, thread pools
    rates: list[float] = []
    vectors = np.empty(0)
    for _ in range(runs):
        began = time.perf_counter()
        vectors = embed_in_requests(backend, texts, request_size)
        rates.append(len(texts) / (time.perf_counter() - began))
    return median(rates), rates, vectors


def cached_st_vectors(cache: Path, corpus: Corpus) -> np.ndarray | None:
    """The cache's chunk vectors when its chunks are exactly ``corpus``'s (same texts, same order)."""
    try:
        cached = json.loads((cache / "chunks.json").read_text(encoding="utf-8"))
        vectors = np.load(cache / "chunk_vectors.npy")
    except (OSError, ValueError):
        return None
    texts = [r.text for r in corpus.records]
    if [row["text"] for row in cached] != texts or len(vectors) != len(texts):
        return None
    return vectors


def retrieval_quality(
    corpus: Corpus, chunk_vectors: np.ndarray, backend: EmbeddingBackend, questions_limit: int
) -> dict[str, dict[str, float]]:
    """hit@k and MRR per search mode, on an embedded store holding ``chunk_vectors``."""
    questions = select_questions(load_questions(DATASET), "held-out", questions_limit)
    question_vectors = embed_in_requests(backend, [q.text for q in questions], 32).tolist()
    records = [r.model_copy(update={"vector": v}) for r, v in zip(corpus.records, chunk_vectors.tolist(), strict=True)]
    with tempfile.TemporaryDirectory() as workdir, LocalVectorStore(Path(workdir) / "vectors.db") as store:
        for start in range(0, len(records), 500):
            store.upsert(records[start : start + 500])
        return {
            mode.value: retrieval_metrics(
                mode_ranks(store, questions, question_vectors, corpus.same_content, mode, tenant=TENANT)
            )
            for mode in QUALITY_MODES
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=1000, help="chunk texts for the throughput runs")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per backend (median reported)")
    parser.add_argument("--request-size", type=int, default=32, help="texts per embed call")
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["sentence-transformers", "onnx fp32", "onnx int8", "onnx int8, unsorted"],
        help="backends to time, the first is the baseline",
    )
    parser.add_argument("--quality", action="store_true", help="also index all of wiki-qa per backend and rank")
    parser.add_argument("--quality-backends", nargs="+", default=["sentence-transformers", "onnx int8"])
    parser.add_argument("--questions", type=int, default=600, help="held-out questions for --quality (seed 7)")
    parser.add_argument("--st-vectors", type=Path, help="cached sentence-transformers chunk vectors (--quality)")
    args = parser.parse_args()

    began = time.perf_counter()
    corpus = build_corpus()
    texts = [r.text for r in corpus.records[: args.chunks]]
    print(f"machine: {machine()}")
    print(
        f"corpus: {len(corpus.records)} chunks of {len(corpus.same_content)} articles, chunked in "
        f"{time.perf_counter() - began:.0f} s; timing the first {len(texts)} chunks, requests of "
        f"{args.request_size}, median of {args.runs} runs",
        flush=True,
    )

    loaded: dict[str, EmbeddingBackend] = {}
    timings: dict[str, tuple[float, list[float]]] = {}
    reference: np.ndarray | None = None
    agreement: dict[str, float] = {}
    for name, factory in backends(args.backends).items():
        backend = loaded[name] = factory()
        backend.load()
        rate, rates, vectors = throughput(backend, texts, args.request_size, args.runs)
        timings[name] = (rate, rates)
        if reference is None:
            reference = vectors
        agreement[name] = float(((vectors * reference).sum(axis=1)).min())
        print(f"  {name}: {rate:.1f} chunks/s ({', '.join(f'{r:.1f}' for r in rates)})", flush=True)

    baseline = timings[args.backends[0]][0]
    print()
    print("| backend | chunks/s (median) | runs | ratio vs baseline | min cosine to baseline |")
    print("|---|---|---|---|---|")
    for name, (rate, rates) in timings.items():
        runs = ", ".join(f"{r:.1f}" for r in rates)
        print(f"| {name} | {rate:.1f} | {runs} | {rate / baseline:.2f} | {agreement[name]:.4f} |")

    if not args.quality:
        return
    print()
    print(f"quality: all {len(corpus.records)} chunks, {args.questions} held-out questions (seed {SEED})", flush=True)
    header = " | ".join(f"{mode.value} hit@{c}" for mode in QUALITY_MODES for c in CUTOFFS)
    rows = [f"| backend | {header} | vector MRR@10 | hybrid MRR@10 | index embed time |"]
    rows.append("|---" * (len(QUALITY_MODES) * len(CUTOFFS) + 4) + "|")
    for name, factory in backends(args.quality_backends).items():
        backend = loaded.get(name) or factory()
        if name not in loaded:
            backend.load()
        embed_began = time.perf_counter()
        chunk_vectors = None
        if name == "sentence-transformers" and args.st_vectors:
            chunk_vectors = cached_st_vectors(args.st_vectors, corpus)
        cached = chunk_vectors is not None
        if chunk_vectors is None:
            chunk_vectors = embed_in_requests(backend, [r.text for r in corpus.records], args.request_size)
        embed_s = time.perf_counter() - embed_began
        metrics = retrieval_quality(corpus, chunk_vectors, backend, args.questions)
        cells = " | ".join(f"{metrics[mode.value][f'hit@{c}']:.3f}" for mode in QUALITY_MODES for c in CUTOFFS)
        seconds = "cached" if cached else f"{embed_s:.0f} s"
        mrr = f"{metrics['vector']['mrr']:.3f} | {metrics['hybrid']['mrr']:.3f}"
        rows.append(f"| {name} | {cells} | {mrr} | {seconds} |")
        print(rows[-1], file=sys.stderr, flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
