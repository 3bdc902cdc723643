"""Gateway overhead, side by side: LiteLLM's proxy and Strata's local stack in front of the same mock upstream.

One invocation starts, on loopback:
  mock     bench.mock_upstream in a subprocess: no delay, 20 chunks per answer
  litellm  the LiteLLM proxy (``litellm[proxy]==1.108.7`` in its own venv, bench/.venv-litellm, created here
           on first use): one worker, no database, telemetry off, the local cost map, a master key, and one
           model route (``mock`` → ``openai/mock`` at the mock); nothing else turned on
  strata   ``strata dev --models FILE`` (strata_local.harness), alias ``default`` → the mock; each request
           turns retrieval off, so both gateways do the same work
and sends the same requests to the mock directly (the baseline), to LiteLLM and to Strata: buffered, and
streamed (20 chunks), at concurrency 1, 16 and 64, in blocks interleaved per round (direct, litellm, strata,
direct, ...) so that drift cancels out. Every request carries a unique message and temperature 0.7, so no
response cache can answer it. The load comes from asyncio httpx clients (``--clients N`` processes; the direct
blocks show whether the client keeps up).

Reported, as medians over the rounds: latency added over the mock called directly (p50/p95/p99; the direct
block's percentile of the same round subtracted), time to first chunk added (streams), requests/s at
saturation (the best concurrency), server CPU per request (utime+stime of the server's process tree read
before and after each block; for Strata the ``strata dev`` process without the model server, which the mock
replaces on this path) and the ratio Strata/LiteLLM. The output ends with a markdown section for RESULTS.md.

    .venv/bin/python -m bench.gateway_overhead [--rounds 3] [--requests 200] [--targets direct,litellm,strata]
                                               [--concurrency 1 16 64] [--clients 1]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime
import inspect
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    REPO_ROOT,
    ClientPerCaller,
    bounded,
    cpu_seconds,
    limited_key,
    machine,
    median,
    percentile,
    process_tree,
    start_strata_with_models,
)
from bench.mock_upstream import Behaviour, spawn_mock

LITELLM_VERSION = "1.108.7"
LITELLM_VENV = REPO_ROOT / "bench" / ".venv-litellm"
LITELLM_KEY = "sk-bench-master"
MODES = ("buffered", "stream")
CHUNKS = 20
# The first content delta of a stream: `"content":"x` (or `"content": "x`), not the empty role chunk.
FIRST_CONTENT = re.compile(rb'"content":\s?"[^"]')


# --- the load ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockSpec:
    """One block of requests from one client process (picklable)."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    stream: bool
    concurrency: int
    count: int
    max_seconds: float


@dataclass
class BlockResult:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    first_chunk: list[float] = field(default_factory=list)  # seconds to the first content chunk (streams)
    errors: int = 0
    first_error: str | None = None
    began: float = 0.0
    ended: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0

    @property
    def done(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def rps(self) -> float:
        return len(self.latencies) / (self.ended - self.began)

    def merge(self, other: BlockResult) -> None:
        self.latencies += other.latencies
        self.first_chunk += other.first_chunk
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error
        self.began = min(self.began, other.began) if self.began else other.began
        self.ended = max(self.ended, other.ended)
        self.client_cpu_s += other.client_cpu_s


async def _run_block(spec: BlockSpec) -> BlockResult:
    result = BlockResult()
    nonce = uuid.uuid4().hex[:12]
    headers = {**spec.headers, "Accept-Encoding": "identity"}
    async with ClientPerCaller(spec.concurrency, timeout=60) as clients:

        async def one(i: int) -> None:
            body = {**spec.body, "messages": [{"role": "user", "content": f"Tell me something new, {nonce}-{i}."}]}
            async with clients.client() as client:
                began = time.perf_counter()
                try:
                    if spec.stream:
                        first, ok = await _stream(client, spec.url, body, headers)
                        if first is not None:
                            result.first_chunk.append(first - began)
                    else:
                        response = await client.post(spec.url, json=body, headers=headers)
                        ok = response.status_code == 200 and b"tok19 " in response.content
                        if not ok:
                            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
                    if not ok:
                        raise RuntimeError("stream without [DONE] or content")
                    result.latencies.append(time.perf_counter() - began)
                except (httpx.HTTPError, RuntimeError) as error:
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(error).__name__}: {error}"

        cpu = time.process_time()
        result.began = time.perf_counter()
        await bounded(spec.count, spec.concurrency, one, deadline=result.began + spec.max_seconds)
        result.ended = time.perf_counter()
        result.client_cpu_s = time.process_time() - cpu
    return result


async def _stream(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[float | None, bool]:
    """(perf_counter at the first content chunk, whether the stream ended with [DONE])."""
    first, tail = None, b""
    async with client.stream("POST", url, json=body, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
        async for piece in response.aiter_raw():
            window = tail + piece
            if first is None and FIRST_CONTENT.search(window):
                first = time.perf_counter()
            tail = window[-64:]
    return first, first is not None and tail.rstrip().endswith(b"data: [DONE]")


def _block_in_process(spec: BlockSpec) -> BlockResult:
    return asyncio.run(_run_block(spec))


class LoadGenerator:
    """Runs a block in this process, or split over ``clients`` processes when one client is not enough."""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        self._pool = (
            concurrent.futures.ProcessPoolExecutor(clients, mp_context=multiprocessing.get_context("spawn"))
            if clients > 1
            else None
        )
        if self._pool is not None:  # start the workers now, not inside the first block
            list(self._pool.map(_warm_worker, range(clients)))

    def run(self, spec: BlockSpec) -> BlockResult:
        if self._pool is None or spec.concurrency == 1:
            return _block_in_process(spec)
        n = min(self.clients, spec.concurrency)
        specs = [
            BlockSpec(
                spec.url,
                spec.headers,
                spec.body,
                spec.stream,
                concurrency=spec.concurrency // n + (i < spec.concurrency % n),
                count=spec.count // n + (i < spec.count % n),
                max_seconds=spec.max_seconds,
            )
            for i in range(n)
        ]
        merged = BlockResult()
        for part in self._pool.map(_block_in_process, specs):
            merged.merge(part)
        return merged

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


def _warm_worker(_: int) -> int:
    return os.getpid()


# --- the servers -------------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str  # the chat completions URL
    headers: dict[str, str]
    body: dict[str, Any]  # everything but the messages
    server_pids: Callable[[], list[int]]  # the processes whose CPU the target's blocks are charged


def litellm_bin() -> Path:
    """bench/.venv-litellm/bin/litellm, installed on first use (its own venv: its pins are not ours)."""
    exe = LITELLM_VENV / "bin" / "litellm"
    version = LITELLM_VENV / ".version"
    if exe.exists() and version.exists() and version.read_text().strip() == LITELLM_VERSION:
        return exe
    print(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (once) ...", flush=True)
    python3 = shutil.which("python3") or sys.executable
    subprocess.run([python3, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], check=True)
    version.write_text(LITELLM_VERSION + "\n")
    return exe


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def litellm_proxy(mock_base_url: str, workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The LiteLLM proxy with one worker and one route to the mock; yields (process, base URL)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: mock\n"
        "    litellm_params:\n"
        "      model: openai/mock\n"
        f"      api_base: {mock_base_url}\n"
        "      api_key: sk-dummy\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    port = free_port()
    # A clean environment: nothing of ours (a LITELLM_LOG=DEBUG, a DATABASE_URL, a proxy) turns a path on.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LITELLM") and name not in ("DATABASE_URL",) and "proxy" not in name.lower()
    }
    env |= {"LITELLM_TELEMETRY_DISABLED": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "*"}
    command = [
        str(litellm_bin()),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    log_path = workdir / "litellm.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"litellm exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"litellm not ready after 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield process, url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def strata_supports_models_file() -> bool:
    from strata_local.harness import start_stack

    return "models_file" in inspect.signature(start_stack).parameters


def strata_models(mock_base_url: str) -> dict[str, Any]:
    return {"default": {"provider": "openai", "base_url": mock_base_url, "model": "mock", "context_window": 8192}}


@contextmanager
def servers(targets: list[str], workdir: Path) -> Iterator[list[Target]]:
    with ExitStack() as stack:
        mock = stack.enter_context(spawn_mock(Behaviour(chunks=CHUNKS)))
        common = {"temperature": 0.7}
        found = [
            Target("direct", f"{mock.base_url}/chat/completions", {}, {"model": "mock", **common}, lambda: [mock.pid])
        ]
        if "litellm" in targets:
            process, url = stack.enter_context(litellm_proxy(mock.base_url, workdir / "litellm"))
            found.append(
                Target(
                    "litellm",
                    f"{url}/v1/chat/completions",
                    {"Authorization": f"Bearer {LITELLM_KEY}"},
                    {"model": "mock", **common},
                    lambda: process_tree(process.pid),
                )
            )
        if "strata" in targets:
            (workdir / "strata").mkdir()
            running = start_strata_with_models(workdir / "strata", strata_models(mock.base_url))
            stack.callback(running.stop)
            found.append(
                Target(
                    "strata",
                    f"{running.api_url}/chat/completions",
                    {"Authorization": f"Bearer {limited_key(running)}"},  # keys and limits on
                    {"model": "default", "strata": {"retrieval": {"enabled": False}}, **common},
                    lambda: process_tree(running.process.pid, exclude="model_endpoint"),
                )
            )
        yield found


# --- measuring and reporting -------------------------------------------------------------------------------------


def measure(load: LoadGenerator, target: Target, mode: str, concurrency: int, count: int, max_s: float) -> BlockResult:
    spec = BlockSpec(
        target.url,
        target.headers,
        {**target.body, "stream": mode == "stream"},
        stream=mode == "stream",
        concurrency=concurrency,
        count=count,
        max_seconds=max_s,
    )
    pids = target.server_pids()
    cpu = cpu_seconds(pids)
    result = load.run(spec)
    result.server_cpu_s = cpu_seconds(pids) - cpu
    return result


def idle_cpu(targets: list[Target], seconds: float = 3.0) -> dict[str, float]:
    """Each server's CPU while nothing is sent (timers, pollers): a share of one core."""
    before = {t.name: cpu_seconds(t.server_pids()) for t in targets}
    time.sleep(seconds)
    return {t.name: (cpu_seconds(t.server_pids()) - before[t.name]) / seconds for t in targets}


@dataclass
class Cell:
    """One (mode, concurrency, target) over the rounds."""

    blocks: list[BlockResult] = field(default_factory=list)

    def per_round(self, stat: Callable[[BlockResult], float]) -> list[float]:
        return [stat(b) for b in self.blocks]

    def med(self, stat: Callable[[BlockResult], float]) -> float:
        return median(self.per_round(stat))


Cells = dict[tuple[str, int, str], Cell]  # (mode, concurrency, target) → its blocks over the rounds
QS = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))


def _ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000 if values else float("nan")


def p(q: float) -> Callable[[BlockResult], float]:
    return lambda b: _ms(b.latencies, q)


def ttfc(b: BlockResult) -> float:
    return _ms(b.first_chunk, 0.5)


def rps(b: BlockResult) -> float:
    return b.rps


def cpu_ms(b: BlockResult) -> float:
    return b.server_cpu_s / max(b.done, 1) * 1000


def added(cells: Cells, mode: str, c: int, stat: Callable[[BlockResult], float], name: str) -> float:
    """Median over rounds of (the target's stat - the direct block's stat in the same round)."""
    mine, base = cells[(mode, c, name)].per_round(stat), cells[(mode, c, "direct")].per_round(stat)
    return median([a - b for a, b in zip(mine, base, strict=True)])


def best_rps(cells: Cells, mode: str, concurrency: list[int], name: str) -> float:
    return max(cells[(mode, c, name)].med(rps) for c in concurrency)


def summary_rows(cells: Cells, concurrency: list[int]) -> list[tuple[str, str, Callable[[str], float]]]:
    """(title, unit, value of a gateway) for the summary table."""
    lo, hi = min(concurrency), max(concurrency)
    rows: list[tuple[str, str, Callable[[str], float]]] = []
    for mode in MODES:
        rows += [(f"{mode}: added latency {qn}, c={lo}", "ms", partial(added, cells, mode, lo, p(q))) for q, qn in QS]
        if mode == "stream":
            rows.append((f"stream: added time to first chunk p50, c={lo}", "ms", partial(added, cells, mode, lo, ttfc)))
        rows += [
            (f"{mode}: added latency p50, c={hi}", "ms", partial(added, cells, mode, hi, p(0.5))),
            (f"{mode}: requests/s at saturation (best c)", "req/s", partial(best_rps, cells, mode, concurrency)),
            (f"{mode}: server CPU per request, c={lo}", "ms", lambda g, m=mode: cells[(m, lo, g)].med(cpu_ms)),
            (f"{mode}: server CPU per request, c={hi}", "ms", lambda g, m=mode: cells[(m, hi, g)].med(cpu_ms)),
        ]
    return rows


def report(cells: Cells, names: list[str], args: argparse.Namespace, idle: dict[str, float], command: str) -> str:
    concurrency = args.concurrency
    gateways = [n for n in names if n != "direct"]
    both = {"litellm", "strata"} <= set(gateways)
    label = {"direct": "mock direct", "litellm": f"LiteLLM {LITELLM_VERSION}", "strata": "Strata"}
    lines = [
        "## Gateway overhead: LiteLLM and Strata in front of the same mock upstream",
        "",
        f"`{command}` ({datetime.date.today().isoformat()}). Machine: {machine()}.",
        f"Mock upstream: no delay, {CHUNKS} chunks per answer, on loopback like both gateways; "
        f"{args.rounds} rounds, each with one block per mode × concurrency × target "
        f"(up to {args.requests} requests, at least 4 per connection; direct, then each gateway, interleaved); "
        f"load from {args.clients} asyncio httpx client process(es), one connection per concurrent caller. "
        'Figures are medians over the rounds; "added" subtracts the direct block of the same round. '
        "CPU: the server's process tree (Strata: `strata dev` without the model server), per request.",
        "",
    ]
    if gateways:
        lines.append("| metric | " + " | ".join(label[g] for g in gateways) + (" | Strata/LiteLLM |" if both else " |"))
        lines.append("|---" * (len(gateways) + 1 + both) + "|")
        for title, unit, value in summary_rows(cells, concurrency):
            values = {g: value(g) for g in gateways}
            row = [f"{values[g]:.1f} {unit}" for g in gateways]
            if both:
                row.append(f"{values['strata'] / values['litellm']:.2f}" if values["litellm"] else "—")
            lines.append(f"| {title} | " + " | ".join(row) + " |")
        lines.append("")
    lines += [
        "| mode | c | target | p50 | p95 | p99 | added p50 / p95 / p99 | first chunk p50 (added) | req/s "
        "| server CPU/req | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        for c in concurrency:
            for name in names:
                cell = cells[(mode, c, name)]
                extra, first = "—", "—"
                if name != "direct":
                    extra = " / ".join(f"{added(cells, mode, c, p(q), name):+.1f}" for q, _ in QS)
                if mode == "stream":
                    first = f"{cell.med(ttfc):.1f}"
                    if name != "direct":
                        first += f" ({added(cells, mode, c, ttfc, name):+.1f})"
                lines.append(
                    f"| {mode} | {c} | {label[name]} | {cell.med(p(0.5)):.1f} | {cell.med(p(0.95)):.1f} | "
                    f"{cell.med(p(0.99)):.1f} | {extra} | {first} | {cell.med(rps):.0f} | "
                    f"{cell.med(cpu_ms):.2f} ms | {sum(b.errors for b in cell.blocks)} |"
                )
    idle_text = ", ".join(f"{label[n]} {idle[n] * 100:.1f}%" for n in names)
    lines += ["", f"Latencies in ms. Idle CPU of each server (share of one core, nothing sent): {idle_text}."]
    hi = max(concurrency)
    direct = cells[("stream", hi, "direct")]
    client_ms = median([b.client_cpu_s / max(b.done, 1) * 1000 for b in direct.blocks])
    gateway_best = max((best_rps(cells, "stream", concurrency, g) for g in gateways), default=0.0)
    factor = f", {direct.med(rps) / gateway_best:.0f}× the best gateway's rate" if gateway_best else ""
    lines.append(
        f"Client check: the mock called directly took {direct.med(rps):.0f} streamed requests/s at c={hi} with "
        f"{client_ms:.2f} ms of client CPU per request{factor} (the client does not limit the gateways while "
        "that factor is well above 1)."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200, help="requests per block (at least 4 per connection)")
    parser.add_argument("--block-seconds", type=float, default=30.0, help="no new request after this, per block")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--targets", default="direct,litellm,strata", help="a subset of direct,litellm,strata")
    parser.add_argument("--clients", type=int, default=1, help="client processes for the load")
    args = parser.parse_args()
    wanted = [t for t in ("direct", "litellm", "strata") if t in args.targets.split(",")]
    if "strata" in wanted and not strata_supports_models_file():
        print("strata_local.harness.start_stack has no models_file yet: measuring without Strata", flush=True)
        wanted.remove("strata")
    command = " ".join([".venv/bin/python -m bench.gateway_overhead", *sys.argv[1:]])
    cells: Cells = defaultdict(Cell)
    load = LoadGenerator(args.clients)
    try:
        with tempfile.TemporaryDirectory() as tmp, servers(wanted, Path(tmp)) as targets:
            names = [t.name for t in targets]
            print(f"servers up: {', '.join(names)}; warming up ...", flush=True)
            for target in targets:
                for mode in MODES:
                    measure(load, target, mode, 16, 64, args.block_seconds)
            idle = idle_cpu(targets)
            for r in range(args.rounds):
                for mode in MODES:
                    for c in args.concurrency:
                        for target in targets:
                            block = measure(load, target, mode, c, max(args.requests, 4 * c), args.block_seconds)
                            cells[(mode, c, target.name)].blocks.append(block)
                            print(
                                f"round {r + 1} {mode:8} c={c:<3} {target.name:8} {block.rps:7.1f} req/s  "
                                f"p50 {_ms(block.latencies, 0.5):7.2f} ms  "
                                f"cpu {cpu_ms(block):6.2f} ms/req  errors {block.errors}"
                                + (f"  ({block.first_error})" if block.first_error else ""),
                                flush=True,
                            )
    finally:
        load.close()
    print()
    print(report(cells, names, args, idle, command))


if __name__ == "__main__":
    main()
