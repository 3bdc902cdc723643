"""Failover under injected faults: Strata in front of a flaky upstream, with a healthy fallback.

Two mock upstreams (bench.mock_upstream, in subprocesses): ``flaky`` fails 30% of its calls, a third each
an error status before the first byte (503), a hang before the first byte (far longer than the router's
first-byte timeout, ``first_byte_s: 1`` in the models file) and a stream cut after a few chunks; ``healthy``
never fails. Strata's registry: ``default`` → flaky with ``fallbacks: [backup]``, ``backup`` → healthy; the
router retries, falls back and continues a cut stream on the next target. 1,000 streamed requests
(concurrency 16, generous client timeouts), each outcome classified:

  complete           a well-formed stream that ends with ``[DONE]`` and carries the whole deterministic answer
                     "tok0 tok1 ... tok19 "
  explicit error     an SSE error event (``data: {"error": ...}``) and no ``[DONE]``, or an HTTP error status
                     with OpenAI's error body: the client knows it has no answer
  silent truncation  anything else: no ``[DONE]`` and no error event, ``[DONE]`` after a short or altered
                     answer, a malformed chunk

Two phases, each on a fresh stack after a warm-up with no faults: ``configured`` (the circuit breaker as
Strata sets it: once open, requests skip the flaky upstream for its cooldown) and ``closed`` (the breaker held
closed through ``STRATA_BREAKER_MIN_CALLS``, so every request meets the flaky upstream first and the
retries, fallbacks and continuations are exercised all along). Well-formed = complete + explicit error.

Every request carries a tag (``[req:N]``) in its message, so the mocks' stats say which request met which
fault on which upstream; the added latency of a failover is the median total time of the requests that met a
fault on the flaky upstream minus that of the requests that did not (and per kind of fault).

    .venv/bin/python -m bench.faults [--requests 1000] [--concurrency 16] [--failure-rate 0.3] [--seed 1]
                                     [--phases configured,closed]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    ClientPerCaller,
    bounded,
    machine,
    median,
    percentile,
    start_strata_with_models,
    strata_stream_body,
)
from bench.mock_upstream import Behaviour, spawn_mock

CHUNKS = 20
EXPECTED = "".join(f"tok{i} " for i in range(CHUNKS))
CLASSES = ("complete", "explicit error", "silent truncation")


@dataclass
class Outcome:
    index: int
    status: int = 0
    total_s: float = 0.0
    first_chunk_s: float | None = None
    content: str = ""
    done: bool = False
    error_event: dict[str, Any] | None = None
    error_body: bool = False  # an HTTP error status with OpenAI's error shape
    malformed: bool = False
    data_after_done: bool = False
    transport_error: str | None = None
    strata: dict[str, Any] = field(default_factory=dict)  # the last `strata` object the stream carried

    @property
    def kind(self) -> str:
        if self.status != 200:
            return "explicit error" if self.error_body and not self.transport_error else "silent truncation"
        if self.malformed or self.data_after_done:
            return "silent truncation"
        if self.done and self.error_event is None and self.content == EXPECTED:
            return "complete"
        if self.error_event is not None and not self.done:
            return "explicit error"
        return "silent truncation"


def _is_openai_error(body: bytes) -> bool:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, dict) and isinstance(error.get("message"), str)


async def one_request(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], index: int, tag: str = ""
) -> Outcome:
    outcome = Outcome(index)
    body = strata_stream_body(f"Tell me something new [req:{tag}{index}]")
    began = time.perf_counter()
    try:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            outcome.status = response.status_code
            if response.status_code != 200:
                outcome.error_body = _is_openai_error(await response.aread())
                return outcome
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if outcome.done:
                    outcome.data_after_done = True
                elif payload == "[DONE]":
                    outcome.done = True
                else:
                    read_chunk(outcome, payload, began)
    except httpx.HTTPError as error:
        outcome.transport_error = f"{type(error).__name__}: {error}"
    finally:
        outcome.total_s = time.perf_counter() - began
    return outcome


def read_chunk(outcome: Outcome, payload: str, began: float) -> None:
    try:
        chunk = json.loads(payload)
    except ValueError:
        outcome.malformed = True
        return
    if not isinstance(chunk, dict):
        outcome.malformed = True
        return
    if "error" in chunk:
        outcome.error_event = chunk["error"] if isinstance(chunk["error"], dict) else {"message": chunk["error"]}
        return
    if isinstance(chunk.get("strata"), dict):
        outcome.strata = chunk["strata"]
    for choice in chunk.get("choices") or []:
        text = (choice.get("delta") or {}).get("content")
        if text:
            if outcome.first_chunk_s is None:
                outcome.first_chunk_s = time.perf_counter() - began
            outcome.content += text


async def send_all(url: str, key: str, count: int, concurrency: int, *, tag: str = "") -> list[Outcome]:
    headers = {"Authorization": f"Bearer {key}"}
    async with ClientPerCaller(concurrency, timeout=httpx.Timeout(120, connect=10)) as clients:

        async def call(i: int) -> Outcome:
            async with clients.client() as client:
                return await one_request(client, url, headers, i, tag)

        results = await bounded(count, concurrency, call)
    return [r for r in results if r is not None]


def models(flaky_url: str, healthy_url: str) -> dict[str, Any]:
    common = {"provider": "openai", "model": "mock", "context_window": 8192}
    return {
        "default": {**common, "base_url": flaky_url, "fallbacks": ["backup"], "timeouts": {"first_byte_s": 1}},
        "backup": {**common, "base_url": healthy_url},
    }


PHASES = {
    # name: (title, extra environment for strata dev)
    "configured": (
        "the circuit breaker as configured (half of the last 20 calls failed, at least 5: open for 30 s)",
        {},
    ),
    "closed": (
        "the circuit breaker held closed (min calls 1,000,000): every request tries the flaky mock first",
        {"STRATA_BREAKER_MIN_CALLS": "1000000"},
    ),
}
WARMUP = 64


@dataclass
class PhaseResult:
    name: str
    outcomes: list[Outcome]
    flaky: dict[str, Any]  # the mocks' stats, with tags
    healthy: dict[str, Any]
    wall_s: float


def run_phase(name: str, args: argparse.Namespace) -> PhaseResult:
    """A fresh stack and fresh mocks; a warm-up with no faults, then the faults and the measured requests."""
    third = args.failure_rate / 3
    faults = {
        "error_rate": third,
        "error_status": 503,
        "hang_rate": third,
        "hang_s": 3600,
        "cut_rate": third,
        "cut_after": args.cut_after,
        "seed": args.seed,
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        spawn_mock(Behaviour(chunks=CHUNKS)) as flaky,
        spawn_mock(Behaviour(chunks=CHUNKS)) as healthy,
    ):
        stack = start_strata_with_models(Path(tmp), models(flaky.base_url, healthy.base_url), env=PHASES[name][1])
        try:
            url, key = f"{stack.api_url}/chat/completions", stack.env["STRATA_API_KEY"]
            asyncio.run(send_all(url, key, WARMUP, args.concurrency, tag="warm"))
            flaky.configure(**faults, reset_stats=True)
            healthy.reset_stats()
            began = time.perf_counter()
            outcomes = asyncio.run(send_all(url, key, args.requests, args.concurrency))
            wall = time.perf_counter() - began
            return PhaseResult(name, outcomes, flaky.stats(tags=True), healthy.stats(tags=True), wall)
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--failure-rate", type=float, default=0.3, help="of the flaky upstream, split in thirds")
    parser.add_argument("--cut-after", type=int, default=5, help="content chunks before a cut")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", default="configured,closed", help=f"a subset of {','.join(PHASES)}")
    args = parser.parse_args()
    phases = [name for name in PHASES if name in args.phases.split(",")]
    results = []
    for name in phases:
        print(f"phase {name}: {PHASES[name][0]} ...", flush=True)
        results.append(run_phase(name, args))
    command = " ".join([".venv/bin/python -m bench.faults", *sys.argv[1:]])
    lines = [
        "## Failover under injected faults",
        "",
        f"`{command}` ({datetime.date.today().isoformat()}). Machine: {machine()}.",
        f"Streamed requests at concurrency {args.concurrency} through Strata (`default` → flaky mock, "
        "`timeouts: {first_byte_s: 1}`, `fallbacks: [backup]`; `backup` → healthy mock), after a warm-up of "
        f"{WARMUP} requests with no faults; the flaky mock then fails {args.failure_rate:.0%} of its calls, a third "
        "each: 503 before the first byte, a hang before the first byte (3,600 s), a cut after "
        f"{args.cut_after} chunks (seed {args.seed}). A fresh stack per phase.",
    ]
    for result in results:
        lines += ["", report(result, args)]
    print("\n".join(lines))


def report(result: PhaseResult, args: argparse.Namespace) -> str:
    outcomes, flaky_stats, healthy_stats, wall = result.outcomes, result.flaky, result.healthy, result.wall_s
    n = len(outcomes)
    kinds = Counter(o.kind for o in outcomes)
    on_flaky = flaky_stats["tags"]
    on_healthy = healthy_stats["tags"]

    def faults_met(o: Outcome) -> list[str]:
        return [x.split("/")[0] for x in on_flaky.get(str(o.index), []) if not x.startswith("ok")]

    clean = [o for o in outcomes if not faults_met(o) and o.kind == "complete"]
    hit = [o for o in outcomes if faults_met(o) and o.kind == "complete"]
    fc, hc = flaky_stats["counters"], healthy_stats["counters"]
    met_any = sum(bool(faults_met(o)) for o in outcomes)
    served_by_backup = sum(str(o.index) in on_healthy for o in outcomes)
    lines = [
        f"### Phase `{result.name}`: {PHASES[result.name][0]}",
        "",
        f"{n} requests in {wall:.1f} s.",
        "",
        "| outcome | requests | share |",
        "|---|---|---|",
    ]
    lines += [f"| {kind} | {kinds[kind]} | {kinds[kind] / n:.1%} |" for kind in CLASSES]
    well_formed = kinds["complete"] + kinds["explicit error"]
    lines += [
        "",
        f"Complete: **{kinds['complete'] / n:.1%}**; well-formed (complete or an explicit error): "
        f"**{well_formed / n:.1%}**.",
        f"Flaky mock: {fc['completions']} calls, {fc['errors']} errors, {fc['hangs']} hangs, {fc['cuts']} cuts, "
        f"{fc['ok']} clean; healthy mock: {hc['completions']} calls, {hc['continuations']} of them continuations "
        f"of a cut stream. Requests that met at least one fault on the flaky mock: {met_any}; "
        f"requests served (wholly or in part) by the healthy mock: {served_by_backup}.",
        "",
        "| requests (complete) | n | median total | p95 total | median first chunk |",
        "|---|---|---|---|---|",
    ]

    def row(title: str, group: list[Outcome]) -> str:
        if not group:
            return f"| {title} | 0 | — | — | — |"
        totals = [o.total_s * 1000 for o in group]
        firsts = [o.first_chunk_s * 1000 for o in group if o.first_chunk_s is not None]
        first = f"{median(firsts):.1f} ms" if firsts else "—"
        return f"| {title} | {len(group)} | {median(totals):.1f} ms | {percentile(totals, 0.95):.1f} ms | {first} |"

    lines.append(row("no fault met", clean))
    lines.append(row("met a fault", hit))
    for fault in ("error", "hang", "cut"):
        lines.append(row(f"… first fault: {fault}", [o for o in hit if faults_met(o)[0] == fault]))
    if clean and hit:
        extra = median([o.total_s for o in hit]) - median([o.total_s for o in clean])
        lines += ["", f"Added latency of a failover (median, met a fault − no fault): **{extra * 1000:+.1f} ms**."]
    strata_failovers = [o.strata.get("failovers") for o in outcomes if "failovers" in o.strata]
    if strata_failovers:
        lines.append(
            f"The responses' `strata.failovers` field: {sum(1 for f in strata_failovers if f)} requests failed over."
        )
    problems = [o for o in outcomes if o.kind == "silent truncation"][:5]
    if problems:
        lines += ["", "First silent truncations:"]
        for o in problems:
            lines.append(
                f"- req {o.index}: status {o.status}, done {o.done}, error event {o.error_event}, "
                f"malformed {o.malformed}, transport {o.transport_error}, content {o.content[-40:]!r}, "
                f"flaky {on_flaky.get(str(o.index))}, healthy {on_healthy.get(str(o.index))}"
            )
    errors = [o for o in outcomes if o.kind == "explicit error"][:3]
    for o in errors:
        lines.append(
            f"- explicit error, req {o.index}: status {o.status}, {o.error_event}, flaky {on_flaky.get(str(o.index))}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
