"""Shared by the benchmarks: the dataset, timing of SSE streams, and the machine description."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASET = REPO_ROOT.parent / "shared" / "datasets" / "wiki-qa"


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def time_to_first_token(client: httpx.Client, url: str, body: dict, headers: dict[str, str] | None = None) -> float:
    """Seconds from sending the request to the first SSE chunk that carries content; the stream is drained."""
    began = time.perf_counter()
    first = None
    with client.stream("POST", url, json=body, headers=headers or {}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if (
                first is None
                and line.startswith("data:")
                and '"content":"' in line.replace(": ", ":")
                and '"content":""' not in line.replace(": ", ":")
            ):
                first = time.perf_counter() - began
    if first is None:
        raise RuntimeError(f"no content arrived from {url}")
    return first
