"""Usage reports: exact within one limiter instance; None where a dimension has no limit."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from strata.throttle import InMemoryBucketStore, Limits, RateLimiter, UsageReport
from tests.unit.throttle.fakes import FakeClock

KEY = Limits(requests_per_minute=600, tokens_per_minute=600_000)
TENANT = Limits(requests_per_minute=6000, tokens_per_minute=6_000_000, tokens_per_day=10**9)


def usage(limiter: RateLimiter, key_limits: Limits = KEY, tenant_limits: Limits = TENANT) -> UsageReport:
    return limiter.usage(tenant="acme", key_id="k1", key_limits=key_limits, tenant_limits=tenant_limits)


def test_usage_is_exact_after_settles_from_many_threads() -> None:
    rng = random.Random(3)
    limiter = RateLimiter(InMemoryBucketStore(), clock=FakeClock())
    work = [(rng.randint(100, 2000), rng.randint(0, 2500)) for _ in range(300)]

    def request(reserved_used: tuple[int, int]) -> None:
        reserved, used = reserved_used
        limiter.admit(tenant="acme", key_id="k1", key_limits=KEY, tenant_limits=TENANT, tokens=reserved).settle(used)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(request, work))

    report = usage(limiter)
    settled = sum(used for _, used in work)
    assert report.tenant.tokens_today == settled
    assert report.key.tokens_this_minute == settled
    assert report.tenant.tokens_this_minute == settled
    assert report.key.requests_this_minute == 300
    assert report.tenant.requests_this_minute == 300
    assert report.key.limits == KEY and report.tenant.limits == TENANT


def test_per_minute_counts_refill_while_tokens_today_stay() -> None:
    clock = FakeClock()
    limiter = RateLimiter(InMemoryBucketStore(), clock=clock)
    for _ in range(60):
        limiter.admit(tenant="acme", key_id="k1", key_limits=KEY, tenant_limits=TENANT, tokens=1000).settle(1000)

    clock.advance(3.0)  # 30 requests and 30000 tokens refill in 3 s at these limits
    half = usage(limiter)
    clock.advance(60.0)
    later = usage(limiter)

    assert (half.key.requests_this_minute, half.key.tokens_this_minute) == (30, 30_000)
    assert (later.key.requests_this_minute, later.key.tokens_this_minute) == (0, 0)
    assert later.tenant.tokens_today == 60_000


def test_dimensions_without_a_limit_report_none_but_tokens_today_always_count() -> None:
    limiter = RateLimiter(InMemoryBucketStore(), clock=FakeClock())
    limiter.admit(tenant="acme", key_id="k1", key_limits=Limits(), tenant_limits=Limits(), tokens=700).settle(650)

    report = usage(limiter, Limits(), Limits())

    assert report.key.requests_this_minute is None and report.key.tokens_this_minute is None
    assert report.tenant.requests_this_minute is None and report.tenant.tokens_this_minute is None
    assert report.tenant.tokens_today == 650


def test_a_fresh_key_reports_zero() -> None:
    report = usage(RateLimiter(InMemoryBucketStore(), clock=FakeClock()))
    assert (report.key.requests_this_minute, report.key.tokens_this_minute) == (0, 0)
    assert report.tenant.tokens_today == 0
