"""``make bench``: every benchmark in turn; copy the output into bench/RESULTS.md."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "bench.startup",
    "bench.ingest_latency",
    "bench.ttft",
    "bench.retrieval_quality",
    "bench.embed_batching",
    "bench.gateway_overhead",
    "bench.gateway_admission",
    "bench.faults",
    "bench.soak",
    "bench.page_latency",
)

if __name__ == "__main__":
    for module in BENCHMARKS:
        print(f"\n## {module}", flush=True)
        subprocess.run([sys.executable, "-m", module], check=True)
