"""Ingestion per stage on 1 MB of real text: parse, chunk, embed, index, against the raw encoder.

The pipeline's stages run in process, as the ingest function runs them: parse
(``strata.ingest.parse_document``), chunk (200 tokens, 40 overlap), embed in the pipeline's
batches of ``EMBED_BATCH_CHUNKS`` through the model server's embedding backend (the pipeline's
embedder calls that backend over HTTP; the HTTP hop is measured by ``bench.ingest_latency``),
index (the embedded store's ``upsert``). The baseline, in the same run, is the raw encoder:
sentence-transformers' ``encode`` on the same chunk texts in one call.

    .venv/bin/python -m bench.ingest_stages [--megabytes 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import machine, median
from bench.ingest_latency import corpus
from model_endpoint.backends.sentence_transformers import (
    SentenceTransformersEmbeddingBackend,
    default_embedding_model_path,
)
from strata.documents import parse_source_key
from strata.ingest import Chunker, parse_document
from strata.ingest.pipeline import EMBED_BATCH_CHUNKS, chunk_records
from strata.retrieval import LocalVectorStore


def timed(action: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = action()
    return result, time.perf_counter() - began


def one_run(
    data: bytes, backend: SentenceTransformersEmbeddingBackend, model: Any, chunker: Chunker
) -> dict[str, float]:
    source = parse_source_key("tenants/bench/corpus.txt")
    parsed, parse_s = timed(lambda: parse_document(data, key=source.key))
    chunks, chunk_s = timed(lambda: chunker.chunk(parsed))
    texts = [chunk.text for chunk in chunks]

    def embed_in_batches() -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH_CHUNKS):
            vectors.extend(backend.embed(texts[start : start + EMBED_BATCH_CHUNKS], normalize=True, truncate=True))
        return vectors

    vectors, embed_s = timed(embed_in_batches)
    _, raw_s = timed(lambda: model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False))
    with tempfile.TemporaryDirectory() as folder:
        store = LocalVectorStore(Path(folder) / "vectors.db")
        try:
            _, index_s = timed(lambda: store.upsert(chunk_records(source, parsed.title, chunks, vectors)))
        finally:
            store.close()
    return {
        "chunks": len(chunks),
        "parse_s": parse_s,
        "chunk_s": chunk_s,
        "embed_s": embed_s,
        "index_s": index_s,
        "raw_encoder_s": raw_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = corpus(int(args.megabytes * 1024 * 1024))
    backend = SentenceTransformersEmbeddingBackend()
    backend.load()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(default_embedding_model_path()), device="cpu", local_files_only=True)
    chunker = Chunker.for_embedding_model(200, 40)
    runs = [one_run(data, backend, model, chunker) for _ in range(args.runs)]
    megabytes = len(data) / 1024 / 1024
    chunks = runs[0]["chunks"]
    print(f"machine: {machine()}; {len(data):,} bytes, {chunks:,} chunks, median of {args.runs} runs")
    print("| stage | median s | runs | MB/s | chunks/s |")
    print("|---|---|---|---|---|")
    total = 0.0
    for stage in ("parse_s", "chunk_s", "embed_s", "index_s", "raw_encoder_s"):
        values = [run[stage] for run in runs]
        seconds = median(values)
        if stage != "raw_encoder_s":
            total += seconds
        shown = ", ".join(f"{v:.2f}" for v in values)
        name = stage.removesuffix("_s").replace("_", " ")
        print(f"| {name} | {seconds:.2f} | {shown} | {megabytes / seconds:.3f} | {chunks / seconds:.1f} |")
    raw = median([run["raw_encoder_s"] for run in runs])
    print(f"| pipeline (parse+chunk+embed+index) | {total:.2f} | | {megabytes / total:.3f} | {chunks / total:.1f} |")
    print(f"pipeline / raw encoder: {total / raw:.2f}x the time")


if __name__ == "__main__":
    main()
