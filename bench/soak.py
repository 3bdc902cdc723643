"""Memory under a long run: streamed requests through Strata in front of the no-delay mock upstream.

Strata's local stack (``strata dev --models FILE``, ``default`` → bench.mock_upstream in a subprocess, 20
chunks, no delay) takes 20,000 streamed requests at concurrency 16 (unique messages, temperature 0.7,
retrieval off). The resident set (VmRSS) of the ``strata dev`` process, where the gateway and the functions
run, is read every 1,000 requests; reported: the samples, and the growth after warm-up (the first 2,000
requests), in total and per 1,000 requests (least squares over the samples after warm-up).

    .venv/bin/python -m bench.soak [--requests 20000] [--concurrency 16] [--every 1000] [--warmup 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import ClientPerCaller, bounded, machine, rss_mib, start_strata_with_models, strata_stream_body
from bench.mock_upstream import Behaviour, spawn_mock

CHUNKS = 20


@dataclass
class Sample:
    requests: int
    elapsed_s: float
    rss_mib: float
    failed: int


async def soak(url: str, key: str, pid: int, args: argparse.Namespace) -> list[Sample]:
    headers = {"Authorization": f"Bearer {key}", "Accept-Encoding": "identity"}
    samples = [Sample(0, 0.0, rss_mib(pid), 0)]
    finished = failed = 0
    began = time.perf_counter()
    async with ClientPerCaller(args.concurrency, timeout=60) as clients:

        async def one(i: int) -> None:
            nonlocal finished, failed
            body = strata_stream_body(f"Tell me something new, soak {i}.")
            tail = b""
            try:
                async with (
                    clients.client() as client,
                    client.stream("POST", url, json=body, headers=headers) as response,
                ):
                    async for piece in response.aiter_raw():
                        tail = (tail + piece)[-64:]
                    ok = response.status_code == 200 and tail.rstrip().endswith(b"data: [DONE]")
            except httpx.HTTPError:
                ok = False
            finished += 1
            failed += not ok
            if finished % args.every == 0:
                samples.append(Sample(finished, time.perf_counter() - began, rss_mib(pid), failed))
                print(f"{finished:>7} requests  {samples[-1].rss_mib:8.1f} MiB  {failed} failed", flush=True)

        await bounded(args.requests, args.concurrency, one)
    return samples


def slope_per_1000(samples: list[Sample]) -> float:
    """Least-squares MiB per 1,000 requests."""
    xs, ys = [s.requests / 1000 for s in samples], [s.rss_mib for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--every", type=int, default=1000, help="requests between RSS samples")
    parser.add_argument("--warmup", type=int, default=2000, help="requests before growth is counted")
    args = parser.parse_args()
    args.every = max(1, min(args.every, args.requests))
    warmup = min(args.warmup, args.requests - args.every)
    with tempfile.TemporaryDirectory() as tmp, spawn_mock(Behaviour(chunks=CHUNKS)) as mock:
        models = {"default": {"provider": "openai", "base_url": mock.base_url, "model": "mock", "context_window": 8192}}
        stack = start_strata_with_models(Path(tmp), models)
        try:
            pid = stack.process.pid
            url = f"{stack.api_url}/chat/completions"
            began = time.perf_counter()
            samples = asyncio.run(soak(url, stack.env["STRATA_API_KEY"], pid, args))
            wall = time.perf_counter() - began
        finally:
            stack.stop()
    after = [s for s in samples if s.requests >= warmup]
    command = " ".join([".venv/bin/python -m bench.soak", *sys.argv[1:]])
    lines = [
        "## Memory under a soak: streamed requests through Strata",
        "",
        f"`{command}` ({datetime.date.today().isoformat()}). Machine: {machine()}.",
        f"{args.requests} streamed requests ({CHUNKS} chunks each, no-delay mock) at concurrency "
        f"{args.concurrency} in {wall:.0f} s ({args.requests / wall:.0f} req/s), {samples[-1].failed} failed; "
        "VmRSS of the `strata dev` process:",
        "",
        "| requests | elapsed | RSS | failed so far |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s.requests:,} | {s.elapsed_s:.0f} s | {s.rss_mib:.1f} MiB | {s.failed} |" for s in samples]
    if len(after) >= 2:
        growth = after[-1].rss_mib - after[0].rss_mib
        lines += [
            "",
            f"Growth after warm-up ({after[0].requests:,} → {after[-1].requests:,} requests): **{growth:+.1f} MiB** "
            f"({slope_per_1000(after):+.2f} MiB per 1,000 requests, least squares); "
            f"start {samples[0].rss_mib:.1f} MiB, peak {max(s.rss_mib for s in samples):.1f} MiB.",
        ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
