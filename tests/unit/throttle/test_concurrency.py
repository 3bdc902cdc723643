"""The concurrency proof: 64 threads against one key limited to 100 requests a minute, on a real
(moto) DynamoDB table shared by several limiter instances standing in for Lambda containers.

moto's DynamoDB is not atomic under threads (see ``serialized_moto_dynamodb``): these tests run
it one request at a time, as DynamoDB applies each conditional write to an item atomically.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from strata.throttle import DynamoDBBucketStore, Limits, RateLimiter, RateLimitExceededError
from tests.fakes import serialized_moto_dynamodb
from tests.unit.throttle.fakes import RATE_LIMITS_TABLE, moto_rate_limits_table

LIMIT = 100
KEY = Limits(requests_per_minute=LIMIT)
TENANT = Limits(tokens_per_day=10**9)
THREADS = 64
CONTAINERS = 4


@pytest.fixture(scope="module")
def table() -> Iterator[Any]:
    with serialized_moto_dynamodb(), moto_rate_limits_table() as table:
        yield table


def container(table: Any) -> RateLimiter:
    # Each container has its own boto3 resource and store (its own hints), as in Lambda.
    own = boto3.resource("dynamodb", region_name="us-east-1").Table(RATE_LIMITS_TABLE)
    assert own.name == table.name
    return RateLimiter(DynamoDBBucketStore(own))


def hammer(limiters: list[RateLimiter], key_id: str, *, until: float, stop: threading.Event) -> tuple[int, int]:
    """64 threads admit (and settle) as fast as they can; returns (admitted, refused)."""
    counts = {"admitted": 0, "refused": 0}
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def worker(limiter: RateLimiter) -> None:
        start.wait()
        while time.time() < until and not stop.is_set():
            try:
                reservation = limiter.admit(
                    tenant="acme", key_id=key_id, key_limits=KEY, tenant_limits=TENANT, tokens=20
                )
            except RateLimitExceededError:
                with lock:
                    counts["refused"] += 1
                continue
            reservation.settle(15)
            with lock:
                counts["admitted"] += 1

    threads = [threading.Thread(target=worker, args=(limiters[i % len(limiters)],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts["admitted"], counts["refused"]


def test_many_containers_never_admit_more_than_burst_plus_refill(table: Any) -> None:
    limiters = [container(table) for _ in range(CONTAINERS)]
    started = time.time()  # the key's bucket is fresh, hence full, from here on

    admitted, refused = hammer(limiters, "k-upper", until=started + 2.5, stop=threading.Event())

    elapsed = time.time() - started
    assert refused > 0  # the threads did press past the limit
    assert admitted <= LIMIT + LIMIT * elapsed / 60, (admitted, elapsed)
    assert admitted >= LIMIT * 0.9  # leases held by other containers cost a few, not the burst
    for limiter in limiters:
        limiter.close()
    report = container(table).usage(tenant="acme", key_id="k-upper", key_limits=KEY, tenant_limits=TENANT)
    # Every lease went back: the table counts what was admitted, less what refilled since.
    assert admitted - LIMIT * (time.time() - started) / 60 - 1 <= report.key.requests_this_minute <= admitted


def test_one_container_reaches_the_whole_burst_before_its_first_refusal(table: Any) -> None:
    limiter = container(table)
    first_refusal = threading.Event()
    started = time.time()

    original_admit = limiter.admit

    def admit(**kwargs: Any) -> Any:
        try:
            return original_admit(**kwargs)
        except RateLimitExceededError:
            first_refusal.set()
            raise

    limiter.admit = admit  # type: ignore[method-assign]

    admitted, _ = hammer([limiter], "k-lower", until=started + 10.0, stop=first_refusal)

    elapsed = time.time() - started
    assert first_refusal.is_set()
    # Threads stop at the first refusal; the few admitted by calls already under way after it
    # can only come from the refill meanwhile.
    assert LIMIT <= admitted <= LIMIT + LIMIT * elapsed / 60
    report = limiter.usage(tenant="acme", key_id="k-lower", key_limits=KEY, tenant_limits=TENANT)
    assert admitted - LIMIT * (time.time() - started) / 60 - 1 <= report.key.requests_this_minute <= admitted
