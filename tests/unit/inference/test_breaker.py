"""The circuit breaker with a clock the test controls, in memory and shared through DynamoDB (moto)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from strata.config import RESOURCES
from strata.inference import (
    BreakerPolicy,
    BreakerState,
    CircuitBreakers,
    DynamoDBBreakerStore,
    InMemoryBreakerStore,
)

POLICY = BreakerPolicy(failure_rate=0.5, window=6, min_calls=3, cooldown_s=30, probe_timeout_s=60, cache_ttl_s=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table() -> Iterator[object]:
    spec = RESOURCES.breakers_table
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        yield dynamodb.create_table(
            TableName=spec.name,
            KeySchema=[{"AttributeName": spec.partition_key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": spec.partition_key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> object:
    if request.param == "memory":
        return InMemoryBreakerStore()
    return DynamoDBBreakerStore(request.getfixturevalue("table"))


def test_breaker_opens_at_the_failure_rate_probes_after_the_cooldown_and_closes_on_success(store) -> None:
    clock = Clock()
    breakers = CircuitBreakers(store, POLICY, clock=clock)
    for _ in range(2):
        breakers.record_failure("a", "503")
    assert breakers.allow("a") and breakers.state("a").state is BreakerState.CLOSED
    breakers.record_failure("a", "503")
    assert breakers.state("a").state is BreakerState.OPEN
    assert not breakers.allow("a")
    assert breakers.retry_after("a") == pytest.approx(30)

    clock.now += 31
    assert breakers.allow("a")  # the one probe
    assert breakers.state("a").state is BreakerState.HALF_OPEN
    assert not breakers.allow("a")  # no second call while the probe is out
    breakers.record_success("a")
    assert breakers.state("a").state is BreakerState.CLOSED and breakers.state("a").failures == 0
    assert breakers.allow("a")


def test_a_failed_probe_opens_the_breaker_again(store) -> None:
    clock = Clock()
    breakers = CircuitBreakers(store, POLICY, clock=clock)
    for _ in range(3):
        breakers.record_failure("a", "503")
    clock.now += 31
    assert breakers.allow("a")
    breakers.record_failure("a", "still down")
    record = breakers.state("a")
    assert record.state is BreakerState.OPEN and record.last_error == "still down"
    assert not breakers.allow("a")


def test_a_probe_that_never_reports_back_frees_the_target_after_its_timeout(store) -> None:
    clock = Clock()
    breakers = CircuitBreakers(store, POLICY, clock=clock)
    for _ in range(3):
        breakers.record_failure("a", "503")
    clock.now += 31
    assert breakers.allow("a")
    clock.now += 61
    assert breakers.allow("a")


def test_a_failure_rate_below_the_threshold_keeps_it_closed(store) -> None:
    breakers = CircuitBreakers(store, POLICY, clock=Clock())
    for ok in (True, False, True, True, False, True, True, False):  # a third fail
        breakers.record_success("a") if ok else breakers.record_failure("a", "x")
    assert breakers.state("a").state is BreakerState.CLOSED
    breakers.record_failure("a", "x")  # the window of 6 now holds 3 failures: half
    assert breakers.state("a").state is BreakerState.OPEN


def test_no_call_writes_to_the_store_unless_the_state_changes() -> None:
    class Counting(InMemoryBreakerStore):
        writes = 0

        def put(self, target, record, *, expected_version):
            Counting.writes += 1
            return super().put(target, record, expected_version=expected_version)

    breakers = CircuitBreakers(Counting(), POLICY, clock=Clock())
    for _ in range(50):
        breakers.record_success("a")
    breakers.record_failure("a", "x")
    assert Counting.writes == 0


def test_containers_share_the_state_and_only_one_of_them_sends_the_probe(table) -> None:
    clock = Clock()
    first = CircuitBreakers(DynamoDBBreakerStore(table), POLICY, clock=clock)
    second = CircuitBreakers(DynamoDBBreakerStore(table), POLICY, clock=clock)
    assert second.allow("a")  # caches "closed"
    for _ in range(3):
        first.record_failure("a", "503")
    assert second.allow("a")  # its cache is still fresh: it learns within cache_ttl_s
    clock.now += 1.5
    assert not second.allow("a")  # opened by the other container

    clock.now += 30
    assert [first.allow("a"), second.allow("a")].count(True) == 1


def test_an_unreachable_store_fails_open() -> None:
    class Broken(InMemoryBreakerStore):
        def get(self, target: str):
            raise ConnectionError("dynamodb down")

        def put(self, target, record, *, expected_version):
            raise ConnectionError("dynamodb down")

    breakers = CircuitBreakers(Broken(), POLICY, clock=Clock())
    for _ in range(5):
        breakers.record_failure("a", "x")
    assert breakers.allow("a")  # a broken store must not take the model down with it


def test_concurrent_callers_of_an_expired_entry_cost_one_store_read() -> None:
    import threading
    import time as real_time

    class Slow(InMemoryBreakerStore):
        reads = 0

        def get(self, target: str):
            Slow.reads += 1
            real_time.sleep(0.2)
            return super().get(target)

    clock = Clock()
    breakers = CircuitBreakers(Slow(), POLICY, clock=clock)
    assert breakers.allow("a")
    clock.now += 2  # the cached entry expired
    threads = [threading.Thread(target=breakers.allow, args=("a",)) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Slow.reads == 2  # the first fill, then one refresh for all sixteen


def test_a_target_known_to_be_down_can_be_tripped_and_reset_at_once(store) -> None:
    clock = Clock()
    breakers = CircuitBreakers(store, POLICY, clock=clock)
    other = CircuitBreakers(store, POLICY, clock=clock)  # another container
    breakers.trip("a", "the local model server exited with code -9")
    clock.now += 1.5  # past the other container's cache
    assert not other.allow("a")
    assert other.state("a").last_error == "the local model server exited with code -9"
    breakers.reset("a")
    clock.now += 1.5
    assert other.allow("a") and other.state("a").state is BreakerState.CLOSED
