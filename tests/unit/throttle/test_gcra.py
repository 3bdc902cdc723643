"""Token-bucket semantics of the limiter (GCRA), on the in-memory store with a fake clock."""

from __future__ import annotations

import random

import pytest

from strata.throttle import InMemoryBucketStore, Limits, RateLimiter, RateLimitExceededError, RequestTooLargeError
from tests.unit.throttle.fakes import FakeClock

UNLIMITED = Limits()


def admit(
    limiter: RateLimiter, key_limits: Limits, tokens: int = 1, *, key_id: str = "k1", tenant_limits: Limits = UNLIMITED
):
    return limiter.admit(
        tenant="acme", key_id=key_id, key_limits=key_limits, tenant_limits=tenant_limits, tokens=tokens
    )


def admit_until_refused(
    limiter: RateLimiter, key_limits: Limits, tokens: int = 1
) -> tuple[int, RateLimitExceededError]:
    admitted = 0
    while True:
        try:
            admit(limiter, key_limits, tokens)
        except RateLimitExceededError as error:
            return admitted, error
        admitted += 1


def test_a_fresh_bucket_admits_exactly_its_burst_then_refuses() -> None:
    limiter = RateLimiter(InMemoryBucketStore(), clock=FakeClock())

    admitted, error = admit_until_refused(limiter, Limits(requests_per_minute=100))

    assert admitted == 100
    assert (error.limit, error.scope) == ("requests", "key")
    # One request refills every 0.6 s.
    assert error.retry_after == pytest.approx(0.6)
    assert str(error) == (
        "Rate limit reached for requests per minute (RPM) on key k1: limit 100, used 100, requested 1. "
        "Try again in 600ms."
    )


def test_the_bucket_refills_at_the_limit_per_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(InMemoryBucketStore(), clock=clock)
    limits = Limits(requests_per_minute=100)
    admit_until_refused(limiter, limits)

    clock.advance(6.0)
    assert admit_until_refused(limiter, limits)[0] == 10

    clock.advance(600.0)  # long idle: full again, never more than the burst
    assert admit_until_refused(limiter, limits)[0] == 100


def test_retry_after_is_exactly_when_the_request_fits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(InMemoryBucketStore(), clock=clock)
    limits = Limits(tokens_per_minute=6000)
    admit(limiter, limits, tokens=5000)

    with pytest.raises(RateLimitExceededError) as refused:
        admit(limiter, limits, tokens=3000)

    # 2000 tokens missing at 100 tokens a second.
    assert refused.value.limit == "tokens"
    assert refused.value.retry_after == pytest.approx(20.0)
    clock.advance(refused.value.retry_after - 0.5)
    with pytest.raises(RateLimitExceededError):
        admit(limiter, limits, tokens=3000)
    clock.advance(0.5)
    admit(limiter, limits, tokens=3000)


def test_a_request_larger_than_the_limit_is_refused_clearly_and_takes_nothing() -> None:
    store = InMemoryBucketStore()
    limiter = RateLimiter(store, clock=FakeClock())
    limits = Limits(requests_per_minute=10, tokens_per_minute=10_000)

    with pytest.raises(RequestTooLargeError) as refused:
        admit(limiter, limits, tokens=20_000)

    assert isinstance(refused.value, RateLimitExceededError)
    assert refused.value.limit == "tokens"
    assert "this request needs 20000 tokens, more than the per-minute limit 10000" in str(refused.value)
    assert store.read(["key#requests#k1", "key#tokens#k1"]) == {}
    admit(limiter, limits, tokens=10_000)  # the whole limit at once is fine


def test_units_admitted_stay_within_burst_plus_refill_over_every_window() -> None:
    """Three containers, random traffic, settles and idle gaps: for every window between two
    admissions, admitted <= L + L * elapsed / 60 (the token-bucket bound, exact)."""
    rng = random.Random(7)
    clock = FakeClock()
    store = InMemoryBucketStore()
    limiters = [RateLimiter(store, clock=clock, lease_fraction=0.2, lease_s=2.0) for _ in range(3)]
    limit = 50
    limits = Limits(requests_per_minute=limit, tokens_per_minute=5000)
    times: list[float] = []
    for _ in range(3000):
        clock.advance(rng.choice([0.0, 0.0, 0.01, 0.1, 0.5, 2.5]) if rng.random() < 0.97 else 40.0)
        try:
            reservation = admit(rng.choice(limiters), limits, tokens=rng.randint(1, 200))
        except RateLimitExceededError:
            continue
        times.append(clock.now)
        reservation.settle(rng.randint(0, 250))

    assert len(times) > 10 * limit  # the traffic did press against the limit
    for first in range(len(times)):
        for last in range(first + limit, len(times)):
            admitted = last - first + 1
            assert admitted <= limit + limit * (times[last] - times[first]) / 60 + 1e-6, (first, last)


def test_a_lease_older_than_its_refill_cannot_be_admitted_from() -> None:
    """Units a container holds are refilled in the table like any others; admitting them after
    another container drained the refilled bucket would exceed the burst."""
    clock = FakeClock()
    store = InMemoryBucketStore()
    idle, busy = (RateLimiter(store, clock=clock, lease_fraction=0.2) for _ in range(2))
    limits = Limits(requests_per_minute=100)
    for _ in range(20):  # grows idle's leases: it holds unused units now
        admit(idle, limits)
    clock.advance(30.0)

    assert admit_until_refused(busy, limits)[0] == 100
    with pytest.raises(RateLimitExceededError):
        admit(idle, limits)


def test_a_late_refund_cannot_credit_units_the_table_refilled() -> None:
    clock = FakeClock()
    store = InMemoryBucketStore()
    first, second = (RateLimiter(store, clock=clock) for _ in range(2))
    limits = Limits(tokens_per_minute=1000)
    reservation = admit(first, limits, tokens=1000)
    clock.advance(60.0)
    admit(second, limits, tokens=1000)  # the refilled bucket, drained again

    reservation.settle(0)  # nothing used, but those tokens refilled long ago

    with pytest.raises(RateLimitExceededError):
        admit(first, limits, tokens=1)
