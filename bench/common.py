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


# --- for the gateway benchmarks (gateway_overhead, faults, soak): processes, percentiles, a bounded load ---

import asyncio  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from typing import TYPE_CHECKING, Any, TypeVar  # noqa: E402

if TYPE_CHECKING:
    from strata_local.harness import RunningStack

R = TypeVar("R")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def process_tree(pid: int, *, exclude: str | None = None) -> list[int]:
    """``pid`` and its live descendants; a process whose command line holds ``exclude`` is left out, with its own."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        if exclude and exclude in command_line(current):
            continue
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (all their threads) so far, from /proc/<pid>/stat."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it has exited
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


async def bounded(
    count: int, concurrency: int, call: Callable[[int], Awaitable[R]], *, deadline: float | None = None
) -> list[R | None]:
    """``await call(i)`` for i in range(count), at most ``concurrency`` at once; none starts after ``deadline``
    (``time.perf_counter``). Results in index order; ``None`` for calls that never started."""
    results: list[R | None] = [None] * count
    indexes = iter(range(count))

    async def worker() -> None:
        for i in indexes:
            if deadline is not None and time.perf_counter() > deadline:
                return
            results[i] = await call(i)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
    return results


def start_strata_with_models(workdir: Path, models: dict[str, Any], **stack_args: Any) -> RunningStack:
    """``strata dev --models FILE`` (through the harness), with ``models`` written as the registry's YAML;
    ``stack_args`` go to ``start_stack`` (``env={"STRATA_...": ...}``)."""
    import yaml

    from strata_local.harness import start_stack

    models_file = workdir / "models.yaml"
    models_file.write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    return start_stack(workdir, models_file=models_file, **stack_args)


# A key and tenant with every limit on, far above what a benchmark sends: admission runs in full
# (leases, the daily quota, the headers) without refusing anything.
BENCH_TENANT = "bench"
BENCH_KEY_LIMITS = ("--rpm", "1000000", "--tpm", "1000000000")
BENCH_TENANT_LIMITS = (*BENCH_KEY_LIMITS, "--tokens-per-day", "100000000000")


def limited_key(stack: RunningStack) -> str:
    """A new key of the benchmark tenant, with the key's and the tenant's limits all set."""
    stack.cli("limits", "set", "--tenant", BENCH_TENANT, *BENCH_TENANT_LIMITS).check_returncode()
    return stack.create_key(BENCH_TENANT, *BENCH_KEY_LIMITS)


class ClientPerCaller:
    """One ``httpx.AsyncClient`` (one connection) per concurrent caller, for ``bounded``: httpx's shared pool
    costs more client CPU per request as connections grow (measured here, streams from the mock: 8.6 ms per
    request at 64 connections in one pool, 1.6 ms with a client each)."""

    def __init__(self, concurrency: int, **client_args: Any) -> None:
        self._free = [httpx.AsyncClient(trust_env=False, **client_args) for _ in range(max(1, concurrency))]
        self._all = list(self._free)

    async def __aenter__(self) -> ClientPerCaller:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.gather(*(client.aclose() for client in self._all))

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        client = self._free.pop()  # never empty: ``bounded`` runs at most ``concurrency`` callers
        try:
            yield client
        finally:
            self._free.append(client)


def strata_stream_body(question: str) -> dict:
    """A streamed chat request to Strata that only the model can answer: retrieval off, sampled
    (temperature 0.7, so the response cache never serves it)."""
    return {
        "model": "default",
        "messages": [{"role": "user", "content": question}],
        "stream": True,
        "temperature": 0.7,
        "strata": {"retrieval": {"enabled": False}},
    }
