"""Reservations: settle refunds or charges, once; admission is all or nothing across buckets."""

from __future__ import annotations

import threading

import pytest

from strata.throttle import InMemoryBucketStore, Limits, RateLimiter, RateLimitExceededError, Reservation
from tests.unit.throttle.fakes import CountingStore, FakeClock

KEY = Limits(requests_per_minute=100, tokens_per_minute=10_000)
TENANT = Limits(tokens_per_day=1_000_000)


def admit(
    limiter: RateLimiter, tokens: int, *, key_limits: Limits = KEY, tenant_limits: Limits = TENANT
) -> Reservation:
    return limiter.admit(tenant="acme", key_id="k1", key_limits=key_limits, tenant_limits=tenant_limits, tokens=tokens)


def usage(limiter: RateLimiter, *, key_limits: Limits = KEY, tenant_limits: Limits = TENANT):
    return limiter.usage(tenant="acme", key_id="k1", key_limits=key_limits, tenant_limits=tenant_limits)


def test_settle_refunds_what_the_request_did_not_use_without_a_table_call() -> None:
    store = CountingStore(InMemoryBucketStore())
    limiter = RateLimiter(store, clock=FakeClock())
    reservation = admit(limiter, 1000)
    assert reservation.tokens == 1000
    calls = store.total

    reservation.settle(200)

    assert store.total == calls
    report = usage(limiter)
    assert report.key.tokens_this_minute == 200
    assert report.tenant.tokens_today == 200
    # The refunded 800 are admissible again right away: 9800 of 10000 are free.
    admit(limiter, 9800)


def test_settle_charges_tokens_used_beyond_the_reservation_even_past_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(InMemoryBucketStore(), clock=clock)

    admit(limiter, 100).settle(15_000)

    report = usage(limiter)
    assert report.key.tokens_this_minute == 15_000
    assert report.tenant.tokens_today == 15_000
    # 5000 tokens over the limit: the bucket is short for another 30 s, then 1 token fits.
    with pytest.raises(RateLimitExceededError) as refused:
        admit(limiter, 1)
    assert refused.value.retry_after == pytest.approx(30.006, abs=1e-3)


def test_settle_is_idempotent() -> None:
    limiter = RateLimiter(InMemoryBucketStore(), clock=FakeClock())
    reservation = admit(limiter, 1000)

    reservation.settle(300)
    reservation.settle(5000)
    reservation.settle(0)

    assert reservation.settled
    assert usage(limiter).tenant.tokens_today == 300


def test_settle_from_many_threads_counts_once() -> None:
    limiter = RateLimiter(InMemoryBucketStore(), clock=FakeClock())
    reservations = [admit(limiter, 50) for _ in range(20)]
    start = threading.Barrier(8)

    def settle_all() -> None:
        start.wait()
        for reservation in reservations:
            reservation.settle(70)

    threads = [threading.Thread(target=settle_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Eight settles each charging 20 more would make 20 * (50 + 8 * 20) = 4200.
    report = usage(limiter)
    assert report.tenant.tokens_today == 20 * 70
    assert report.key.tokens_this_minute == 20 * 70


def test_settle_refuses_negative_usage() -> None:
    reservation = admit(RateLimiter(InMemoryBucketStore(), clock=FakeClock()), 10)
    with pytest.raises(ValueError, match="tokens_used must be >= 0"):
        reservation.settle(-1)
    assert not reservation.settled


def test_a_refusal_by_one_bucket_takes_nothing_from_the_others() -> None:
    limiter = RateLimiter(InMemoryBucketStore(), clock=FakeClock())
    tenant_limits = Limits(requests_per_minute=1_000, tokens_per_minute=5_000, tokens_per_day=1_000_000)
    admit(limiter, 4_000, tenant_limits=tenant_limits).settle(4_000)

    # The key has room (6000 tokens); the tenant has 1000 left.
    with pytest.raises(RateLimitExceededError) as refused:
        admit(limiter, 2_000, tenant_limits=tenant_limits)

    assert (refused.value.limit, refused.value.scope) == ("tokens", "tenant")
    report = usage(limiter, tenant_limits=tenant_limits)
    assert (report.key.requests_this_minute, report.key.tokens_this_minute) == (1, 4_000)
    assert (report.tenant.requests_this_minute, report.tenant.tokens_this_minute) == (1, 4_000)
    assert report.tenant.tokens_today == 4_000
    admit(limiter, 1_000, tenant_limits=tenant_limits)  # exactly what is left


def test_a_store_failure_mid_admission_takes_nothing_either() -> None:
    class FailingDay(InMemoryBucketStore):
        def add_daily(self, bucket: str, n: int, *, quota: int | None, expires_at: int):  # type: ignore[no-untyped-def]
            raise ConnectionError("DynamoDB unreachable")

    limiter = RateLimiter(FailingDay(), clock=FakeClock())

    with pytest.raises(ConnectionError):
        admit(limiter, 500)

    assert usage(limiter).key.requests_this_minute == 0
    assert usage(limiter).key.tokens_this_minute == 0
