"""What auth and admission cost per request, apart from the model and retrieval.

Two views, each over ``--requests`` requests (default 2,000) with a key that has requests and
tokens per minute and a tenant with a daily quota:

- **in the running stack** (``strata dev`` in front of a no-delay mock upstream): the request
  records' ``auth`` (the gateway's authorizer call; 0 while its policy is cached), ``queue``
  (the parsed request waiting for a worker thread: not auth or admission, shown for scale) and
  ``admit`` (the admission stage itself) in wall milliseconds;
- **in process, per operation**: wall and CPU time (``time.thread_time``) of the gateway's
  cached-policy path, of the authorizer on a cache miss (key and tenant limits from DynamoDB —
  moto here, in the same process, so its CPU counts too), and of the limiter's admit + settle
  against a DynamoDB table (moto), where a leased slice makes most of them touch no table.

``python -m bench.gateway_admission [--requests 2000]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.common import limited_key, machine, percentile, start_strata_with_models
from bench.mock_upstream import Behaviour, MockUpstream


def in_the_stack(requests: int) -> dict[str, list[float]]:
    with MockUpstream(Behaviour(seed=1)) as mock, tempfile.TemporaryDirectory() as workdir:
        models = {"default": {"provider": "openai", "base_url": mock.base_url, "model": "mock", "context_window": 8192}}
        stack = start_strata_with_models(Path(workdir), models)
        try:
            key = limited_key(stack)
            body = {
                "model": "default",
                "messages": [{"role": "user", "content": "What do kangaroos eat?"}],
                "strata": {"retrieval": {"enabled": False}, "cache": False},
            }

            async def load() -> None:
                async with httpx.AsyncClient(
                    base_url=stack.api_url.removesuffix("/v1"), headers={"Authorization": f"Bearer {key}"}, timeout=30
                ) as client:
                    semaphore = asyncio.Semaphore(4)

                    async def one() -> None:
                        async with semaphore:
                            response = await client.post("/v1/chat/completions", json=body)
                            response.raise_for_status()

                    await asyncio.gather(*(one() for _ in range(requests)))

            asyncio.run(load())
            time.sleep(0.5)
            log = (stack.state_dir / "logs" / "strata.log").read_text()
        finally:
            stack.stop()
    timings: dict[str, list[float]] = {"auth": [], "queue": [], "admit": []}
    for line in log.splitlines():
        if "strata.requests" in line and "tenant=bench" in line:
            for stage in timings:
                found = re.search(rf"\b{stage}=([\d.]+)ms", line)
                if found:
                    timings[stage].append(float(found.group(1)))
    return timings


def _measure(operation: Callable[[], object], count: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(count):
        began_wall, began_cpu = time.perf_counter(), time.thread_time()
        operation()
        cpu.append((time.thread_time() - began_cpu) * 1000)
        wall.append((time.perf_counter() - began_wall) * 1000)
    return wall, cpu


def in_process(requests: int) -> dict[str, tuple[list[float], list[float]]]:
    import boto3
    from moto import mock_aws

    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    os.environ["STRATA_KEY_PEPPER"] = secrets.token_urlsafe(32)
    with mock_aws():
        from functions.authorizer import app as authorizer
        from strata.auth import ApiKeyStore, TenantStore
        from strata.config import get_settings
        from strata.throttle import DynamoDBBucketStore, Limits, RateLimiter
        from strata_local.aws import create_tables
        from strata_local.gateway import LocalGateway, Route

        create_tables(boto3.client("dynamodb"))
        dynamodb = boto3.resource("dynamodb")
        get_settings.cache_clear()
        key_limits = Limits(requests_per_minute=1_000_000, tokens_per_minute=1_000_000_000)
        tenant_limits = Limits(tokens_per_day=100_000_000_000, **key_limits.model_dump(exclude_none=True))
        issued = ApiKeyStore(dynamodb.Table("strata-keys"), os.environ["STRATA_KEY_PEPPER"]).create(
            "bench", limits=key_limits
        )
        TenantStore(dynamodb.Table("strata-tenants")).set_limits("bench", tenant_limits)

        headers = [(b"authorization", f"Bearer {issued.secret}".encode()), (b"host", b"api")]
        scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers}
        gateway = LocalGateway(routes=[Route("/v1/chat/completions", lambda *_: None)], authorizer=authorizer.handler)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(gateway._authorize(scope))  # the policy is cached from here on
        cached = _measure(lambda: loop.run_until_complete(gateway._authorize(scope)), requests)

        event = gateway._authorizer_event(scope)
        miss = _measure(lambda: authorizer.handler(event, None), max(200, requests // 10))

        limiter = RateLimiter(DynamoDBBucketStore(dynamodb.Table("strata-rate-limits")))

        def admit_and_settle() -> None:
            reservation = limiter.admit(
                tenant="bench", key_id=issued.key_id, key_limits=key_limits, tenant_limits=tenant_limits, tokens=80
            )
            reservation.settle(60)

        admission = _measure(admit_and_settle, requests)
        limiter.close()
        loop.close()
    return {
        "gateway, cached policy (each request)": cached,
        "authorizer on a cache miss (once per key per 60 s)": miss,
        "admit + settle (each metered request)": admission,
    }


def _row(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {len(values)} | {percentile(values, 0.5):.3f} | {percentile(values, 0.95):.3f} "
        f"| {percentile(values, 0.99):.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"Machine: {machine()}. `python -m bench.gateway_admission --requests {args.requests}`\n")

    print("In the running stack (request records, wall ms):\n")
    print("| stage | requests | p50 | p95 | p99 |\n|---|---|---|---|---|")
    for stage, values in in_the_stack(args.requests).items():
        print(_row(stage, values))

    print("\nIn process, per operation (wall ms / CPU ms):\n")
    print("| operation | calls | p50 | p95 | p99 |\n|---|---|---|---|---|")
    for name, (wall, cpu) in in_process(args.requests).items():
        print(_row(f"{name}, wall", wall))
        print(_row(f"{name}, CPU", cpu))


if __name__ == "__main__":
    main()
