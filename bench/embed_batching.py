"""Embedding throughput of the model server with request coalescing on and off, in the same run.

Two model servers (`python -m model_endpoint`) run side by side: one as it ships (embedding
batching on), one started with `--no-embedding-batching`. Each round, 16 concurrent callers each
send a fixed number of single-text `/invocations` embedding requests (real sentences from the
wiki-qa articles) to one server, then the same sentences to the other; the order alternates
round by round, so drift in the machine's load hits both alike. One warm-up round per server is
not counted. Reported: requests per second (median over the rounds) and the ratio on/off.

    .venv/bin/python -m bench.embed_batching [--rounds 5] [--callers 16] [--requests 25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import DATASET, REPO_ROOT, machine, median
from model_endpoint.config import ServerConfig

READY_TIMEOUT_S = 300
MODES = {"on": [], "off": ["--no-embedding-batching"]}


def sentences(min_chars: int = 30, max_chars: int = 400) -> list[str]:
    """Every distinct sentence of the wiki-qa articles, in a fixed order."""
    seen: dict[str, None] = {}
    for path in sorted((DATASET / "documents").glob("*.txt")):
        for paragraph in path.read_text(encoding="utf-8", errors="replace").split("\n"):
            for sentence in re.split(r"(?<=[.!?])\s+", paragraph.strip()):
                if min_chars <= len(sentence) <= max_chars:
                    seen.setdefault(sentence, None)
    return list(seen)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True, slots=True)
class Server:
    mode: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


@contextmanager
def model_servers(workdir: Path) -> Iterator[dict[str, Server]]:
    """One model server per mode, started together, stopped (SIGTERM) at the end."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    servers: dict[str, Server] = {}
    try:
        for mode, flags in MODES.items():
            port = _free_port()
            log_path = workdir / f"model_endpoint_{mode}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "model_endpoint", "--port", str(port), *flags],
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            servers[mode] = Server(mode, f"http://127.0.0.1:{port}", process, log_path)
        for server in servers.values():
            _wait_until_ready(server)
        yield servers
    finally:
        for server in servers.values():
            server.process.terminate()
        for server in servers.values():
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.process.kill()


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"model server ({server.mode}) exited:\n{server.log_path.read_text()}")
        try:
            if httpx.get(f"{server.url}/ping", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"model server ({server.mode}) not ready after {READY_TIMEOUT_S}s")


@dataclass(frozen=True, slots=True)
class Round:
    requests_per_s: float
    latency_ms: float  # median per request


async def _run_round(url: str, work: list[list[str]]) -> Round:
    """Each caller sends its texts one request at a time; all callers at once."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=len(work), max_keepalive_connections=len(work))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def caller(texts: list[str]) -> None:
            for text in texts:
                sent = time.perf_counter()
                response = await client.post("/invocations", json={"inputs": text})
                latencies.append(time.perf_counter() - sent)
                response.raise_for_status()
                vectors = response.json()
                if len(vectors) != 1 or len(vectors[0]) != 384:
                    raise RuntimeError(f"unexpected embedding reply of shape {len(vectors)}x{len(vectors[0])}")

        began = time.perf_counter()
        await asyncio.gather(*(caller(texts) for texts in work))
        elapsed = time.perf_counter() - began
    total = sum(len(texts) for texts in work)
    return Round(requests_per_s=total / elapsed, latency_ms=median(latencies) * 1000)


def _work(pool: list[str], round_index: int, callers: int, per_caller: int) -> list[list[str]]:
    start = round_index * callers * per_caller
    return [
        [pool[(start + caller * per_caller + i) % len(pool)] for i in range(per_caller)] for caller in range(callers)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--requests", type=int, default=25, help="requests per caller per round")
    args = parser.parse_args()
    pool = sentences()
    results: dict[str, list[Round]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as workdir, model_servers(Path(workdir)) as servers:
        for server in servers.values():  # warm-up: first passes, thread pools, connections
            asyncio.run(_run_round(server.url, _work(pool, 0, args.callers, 4)))
        for index in range(args.rounds):
            order = list(MODES) if index % 2 == 0 else list(reversed(MODES))
            work = _work(pool, index + 1, args.callers, args.requests)  # the same sentences for both
            for mode in order:
                results[mode].append(asyncio.run(_run_round(servers[mode].url, work)))
    _report(results, args, len(pool))


def _report(results: dict[str, list[Round]], args: argparse.Namespace, pool_size: int) -> None:
    rate = {mode: median([r.requests_per_s for r in rounds]) for mode, rounds in results.items()}
    latency = {mode: median([r.latency_ms for r in rounds]) for mode, rounds in results.items()}
    per_round = args.callers * args.requests
    print(f"machine: {machine()}")
    print(
        f"{args.rounds} interleaved rounds; each: {args.callers} concurrent callers x {args.requests} "
        f"single-text /invocations requests ({per_round} requests), wiki-qa sentences ({pool_size} distinct)"
    )
    for mode, rounds in results.items():
        runs = ", ".join(f"{r.requests_per_s:.1f}" for r in rounds)
        print(
            f"  batching {mode:<3}  median {rate[mode]:7.1f} req/s  "
            f"latency p50 {latency[mode]:7.1f} ms  rounds [{runs}]"
        )
    ratio = rate["on"] / rate["off"]
    print(f"ratio on/off: {ratio:.2f}x")
    print()
    print("## Embedding request coalescing: 16 concurrent single-text callers")
    print()
    print(
        f"`.venv/bin/python -m bench.embed_batching --rounds {args.rounds} --callers {args.callers} "
        f"--requests {args.requests}` ({time.strftime('%Y-%m-%d')}). Machine: {machine()}."
    )
    defaults = ServerConfig()
    print(
        f"Two model servers side by side, one with embedding batching on (the default: "
        f"{defaults.embedding_batch_window_ms:g} ms window, {defaults.embedding_max_batch_size} texts per pass) "
        f"and one started with `--no-embedding-batching`; each round, "
        f"{args.callers} concurrent callers each send {args.requests} single-text `/invocations` "
        "embedding requests (real wiki-qa sentences, the same ones to both servers), alternating which "
        "server goes first; one warm-up round each is not counted:"
    )
    print()
    print("| batching | median req/s | median latency | req/s per round |")
    print("|---|---|---|---|")
    for mode, rounds in results.items():
        runs = ", ".join(f"{r.requests_per_s:.1f}" for r in rounds)
        print(f"| {mode} | {rate[mode]:.1f} | {latency[mode]:.1f} ms | {runs} |")
    print()
    print(f"Coalescing serves **{ratio:.2f}x** the requests per second of one forward pass per request.")


if __name__ == "__main__":
    main()
