"""Time from an S3 drop to searchable for a 1 MB text document (S3 → SQS → ingest → index).

.venv/bin/python -m bench.ingest_latency [--runs 3] [--megabytes 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import DATASET, machine, median
from strata.documents import document_id_for
from strata_local.harness import start_stack


def corpus(size_bytes: int) -> bytes:
    """Real articles from the dataset, concatenated up to ``size_bytes``."""
    parts: list[bytes] = []
    total = 0
    for path in sorted((DATASET / "documents").glob("*.txt")):
        data = path.read_bytes()
        parts.append(data)
        total += len(data)
        if total >= size_bytes:
            break
    return b"\n\n".join(parts)[:size_bytes]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--megabytes", type=float, default=1.0)
    args = parser.parse_args()
    body = corpus(int(args.megabytes * 1024 * 1024))
    with tempfile.TemporaryDirectory() as workdir:
        stack = start_stack(Path(workdir))
        try:
            s3 = stack.boto3_client("s3")
            latencies, chunks = [], []
            for run in range(args.runs):
                key = f"tenants/dev/bench/corpus-{run}.txt"
                began = time.perf_counter()
                s3.put_object(Bucket=stack.env["STRATA_DOCUMENTS_BUCKET"], Key=key, Body=body)
                document = stack.wait_for_status(document_id_for(key), "indexed", timeout_s=900)
                latencies.append(time.perf_counter() - began)
                chunks.append(document["chunks"])
        finally:
            stack.stop()
    size_mb = len(body) / 1024 / 1024
    print(f"machine: {machine()}")
    print(f"document: {len(body)} bytes of wiki-qa text, {chunks[0]} chunks")
    print(f"drop → searchable: median {median(latencies):.2f} s  runs {[round(x, 2) for x in latencies]}")
    print(f"throughput: {size_mb / median(latencies):.3f} MB/s, {chunks[0] / median(latencies):.1f} chunks/s")


if __name__ == "__main__":
    main()
