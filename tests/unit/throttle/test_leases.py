"""Leases: most admissions touch no table; unused units go back after lease_s and on close."""

from __future__ import annotations

import pytest

from strata.throttle import InMemoryBucketStore, Limits, RateLimiter, RateLimitExceededError
from tests.unit.throttle.fakes import CountingStore, FakeClock

KEY = Limits(requests_per_minute=1000, tokens_per_minute=100_000)
TENANT = Limits(tokens_per_day=10_000_000)


def admit(limiter: RateLimiter, tokens: int = 100, key_limits: Limits = KEY):
    return limiter.admit(tenant="acme", key_id="k1", key_limits=key_limits, tenant_limits=TENANT, tokens=tokens)


def used_in_table(store: InMemoryBucketStore, bucket: str, interval: float, now: float) -> float:
    tat = store.read([bucket]).get(bucket, now)
    return max(tat - now, 0.0) / interval


def test_most_admissions_and_settles_make_no_table_call() -> None:
    clock = FakeClock()
    store = CountingStore(InMemoryBucketStore())
    limiter = RateLimiter(store, clock=clock)

    for _ in range(500):
        admit(limiter).settle(80)
        clock.advance(0.01)

    # Five buckets (key and tenant: none for the tenant's per-minute; the day counter): leases
    # double from 1 up to 5% of each limit, so a few dozen round trips serve 500 requests.
    assert store.total <= 60, store.calls
    assert store.calls["give_back"] == 0


def test_an_idle_container_starts_with_a_lease_of_just_what_it_needs() -> None:
    clock = FakeClock()
    store = InMemoryBucketStore()
    limiter = RateLimiter(store, clock=clock)

    admit(limiter, tokens=100)

    assert used_in_table(store, "key#requests#k1", 0.06, clock.now) == pytest.approx(1)
    assert used_in_table(store, "key#tokens#k1", 0.0006, clock.now) == pytest.approx(100)
    assert store.read(["day#acme#2023-11-14"]) == {"day#acme#2023-11-14": 100.0}


def test_leases_grow_with_demand_up_to_the_lease_fraction() -> None:
    clock = FakeClock()
    store = CountingStore(InMemoryBucketStore())
    limiter = RateLimiter(store, clock=clock, lease_fraction=0.05)
    for _ in range(200):
        admit(limiter, tokens=0)

    # 1, then 8, then slices of 50 (5% of 1000): 200 requests in 6 takes.
    assert store.calls["take"] == 6
    used = used_in_table(store.inner, "key#requests#k1", 0.06, clock.now)  # type: ignore[arg-type]
    assert 200 <= used <= 250


def test_unused_units_go_back_on_the_first_call_after_lease_s_idle() -> None:
    clock = FakeClock()
    store = CountingStore(InMemoryBucketStore())
    limiter = RateLimiter(store, clock=clock, lease_s=2.0)
    for _ in range(100):
        admit(limiter, tokens=0)
    held_before = round(used_in_table(store.inner, "key#requests#k1", 0.06, clock.now)) - 100  # type: ignore[arg-type]
    assert held_before > 0

    clock.advance(1.9)
    admit(limiter, tokens=0)
    clock.advance(0.2)  # 2.1 s since the lease was taken, but it is in use: it is kept
    admit(limiter, tokens=0)
    assert store.calls["give_back"] == 0
    clock.advance(2.0)  # idle for lease_s: the next call gives it back
    admit(limiter, tokens=0)

    assert store.calls["give_back"] == 1
    # What the table counts is now exactly what was admitted, less what refilled meanwhile.
    refilled = 4.1 / 0.06
    assert used_in_table(store.inner, "key#requests#k1", 0.06, clock.now) == pytest.approx(103 - refilled)  # type: ignore[arg-type]


def test_close_gives_every_lease_back() -> None:
    clock = FakeClock()
    store = InMemoryBucketStore()
    limiter = RateLimiter(store, clock=clock)
    for _ in range(100):
        admit(limiter, tokens=100).settle(100)

    limiter.close()

    assert used_in_table(store, "key#requests#k1", 0.06, clock.now) == pytest.approx(100)
    assert used_in_table(store, "key#tokens#k1", 0.0006, clock.now) == pytest.approx(10_000)
    assert store.read(["day#acme#2023-11-14"]) == {"day#acme#2023-11-14": 10_000.0}


def test_another_containers_unused_lease_counts_as_used_until_it_goes_back() -> None:
    clock = FakeClock()
    store = InMemoryBucketStore()
    holder, other = RateLimiter(store, clock=clock), RateLimiter(store, clock=clock)
    limits = Limits(requests_per_minute=100)
    for _ in range(10):
        admit(holder, tokens=0, key_limits=limits)
    held = round(used_in_table(store, "key#requests#k1", 0.6, clock.now)) - 10
    assert held > 0

    def burst() -> int:
        admitted = 0
        try:
            while True:
                admit(other, tokens=0, key_limits=limits)
                admitted += 1
        except RateLimitExceededError:
            return admitted

    assert burst() == 90 - held
    clock.advance(2.0)  # refills 3.33 requests; the holder gives its lease back on its next call
    admit(holder, tokens=0, key_limits=limits)
    assert burst() == int(held + 2.0 / 0.6) - 1


def test_a_new_limit_returns_the_old_lease_and_starts_over() -> None:
    clock = FakeClock()
    store = InMemoryBucketStore()
    limiter = RateLimiter(store, clock=clock)
    for _ in range(100):
        admit(limiter, tokens=0)

    admit(limiter, tokens=0, key_limits=Limits(requests_per_minute=2000))

    # The old lease went back in the old interval: 100 admitted at 60 ms, one more at 30 ms.
    assert used_in_table(store, "key#requests#k1", 0.06, clock.now) == pytest.approx(100 + 0.5)


def test_a_lease_in_steady_use_is_not_handed_back_and_taken_again_every_lease_s() -> None:
    clock = FakeClock()
    store = CountingStore(InMemoryBucketStore())
    limiter = RateLimiter(store, clock=clock, lease_s=2.0)
    for _ in range(100):  # 10 s of one request every 100 ms
        admit(limiter, tokens=0)
        clock.advance(0.1)
    assert store.calls["give_back"] == 0
    assert sum(store.calls.values()) < 100 / 4  # most admissions touched no table
