"""The daily token quota per tenant, and the UTC day rolling over (fake clock)."""

from __future__ import annotations

import pytest

from strata.throttle import InMemoryBucketStore, Limits, RateLimiter, RateLimitExceededError, RequestTooLargeError
from tests.unit.throttle.fakes import NOON, FakeClock

QUOTA = Limits(tokens_per_day=10_000)


def admit(limiter: RateLimiter, tokens: int, tenant_limits: Limits = QUOTA):
    return limiter.admit(tenant="acme", key_id="k1", key_limits=Limits(), tenant_limits=tenant_limits, tokens=tokens)


def tokens_today(limiter: RateLimiter, tenant_limits: Limits = QUOTA) -> int:
    return limiter.usage(
        tenant="acme", key_id="k1", key_limits=Limits(), tenant_limits=tenant_limits
    ).tenant.tokens_today


def test_the_quota_refuses_until_utc_midnight() -> None:
    clock = FakeClock()
    limiter = RateLimiter(InMemoryBucketStore(), clock=clock)
    admit(limiter, 6_000).settle(6_000)
    admit(limiter, 3_500).settle(3_500)

    with pytest.raises(RateLimitExceededError) as refused:
        admit(limiter, 600)

    assert (refused.value.limit, refused.value.scope) == ("tokens_per_day", "tenant")
    assert refused.value.retry_after == pytest.approx(12 * 3600)
    assert str(refused.value) == (
        "Rate limit reached for tokens per day (TPD) on tenant acme: limit 10000, used 9500, requested 600. "
        "Try again in 12h0m0s."
    )
    admit(limiter, 500)  # exactly what is left


def test_a_new_utc_day_starts_a_new_counter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(InMemoryBucketStore(), clock=clock)
    admit(limiter, 10_000).settle(10_000)

    clock.now = NOON + 12 * 3600  # midnight
    admit(limiter, 4_000).settle(2_500)

    assert tokens_today(limiter) == 2_500


def test_a_request_reserved_before_midnight_settles_on_its_own_day() -> None:
    clock = FakeClock(NOON + 12 * 3600 - 1)
    store = InMemoryBucketStore()
    limiter = RateLimiter(store, clock=clock)
    reservation = admit(limiter, 4_000)
    clock.advance(2)
    admit(limiter, 100).settle(100)

    reservation.settle(1_000)

    assert tokens_today(limiter) == 100
    assert store.read(["day#acme#2023-11-14"]) == {"day#acme#2023-11-14": 1_000.0}


def test_two_containers_never_admit_more_than_the_quota() -> None:
    clock = FakeClock()
    store = InMemoryBucketStore()
    limiters = [RateLimiter(store, clock=clock, lease_fraction=0.3) for _ in range(2)]
    admitted = 0
    for turn in range(200):
        try:
            admit(limiters[turn % 2], 70).settle(70)
            admitted += 70
        except RateLimitExceededError:
            pass
        clock.advance(0.5)

    assert 10_000 - 70 < admitted <= 10_000
    for limiter in limiters:
        limiter.close()
    assert store.read(["day#acme#2023-11-14"]) == {"day#acme#2023-11-14": float(admitted)}


def test_a_request_larger_than_the_whole_quota_is_too_large() -> None:
    limiter = RateLimiter(InMemoryBucketStore(), clock=FakeClock())

    with pytest.raises(RequestTooLargeError, match="needs 20000 tokens, more than the daily quota 10000"):
        admit(limiter, 20_000)
