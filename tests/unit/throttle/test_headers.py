"""OpenAI's x-ratelimit-* headers on reservations and refusals."""

from __future__ import annotations

import pytest

from strata.throttle import InMemoryBucketStore, Limits, RateLimiter, RateLimitExceededError, format_duration
from tests.unit.throttle.fakes import FakeClock


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "1ms"),
        (0.25, "250ms"),
        (1, "1s"),
        (1.2, "1.2s"),
        (17.016, "17.016s"),
        (360, "6m0s"),
        (179.56, "2m59.56s"),
        (3661.5, "1h1m1.5s"),
    ],
)
def test_durations_are_written_as_openai_writes_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_reservation_headers_come_from_the_tightest_of_key_and_tenant() -> None:
    limiter = RateLimiter(InMemoryBucketStore(), clock=FakeClock())

    reservation = limiter.admit(
        tenant="acme",
        key_id="k1",
        key_limits=Limits(requests_per_minute=100, tokens_per_minute=90_000),
        tenant_limits=Limits(requests_per_minute=10, tokens_per_minute=1_000_000),
        tokens=3000,
    )

    assert reservation.headers == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-reset-requests": "6s",
        "x-ratelimit-limit-tokens": "90000",
        "x-ratelimit-remaining-tokens": "87000",
        "x-ratelimit-reset-tokens": "2s",
    }


def test_a_dimension_without_limits_has_no_headers() -> None:
    limiter = RateLimiter(InMemoryBucketStore(), clock=FakeClock())

    reservation = limiter.admit(
        tenant="acme", key_id="k1", key_limits=Limits(requests_per_minute=100), tenant_limits=Limits(), tokens=10
    )

    assert set(reservation.headers) == {
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    }


def test_a_refusal_carries_the_headers_retry_after_and_an_openai_style_message() -> None:
    limiter = RateLimiter(InMemoryBucketStore(), clock=FakeClock())
    limits = Limits(requests_per_minute=1000, tokens_per_minute=10_000)
    limiter.admit(tenant="acme", key_id="k9", key_limits=limits, tenant_limits=Limits(), tokens=9_000)

    with pytest.raises(RateLimitExceededError) as refused:
        limiter.admit(tenant="acme", key_id="k9", key_limits=limits, tenant_limits=Limits(), tokens=2_000)

    error = refused.value
    assert (error.limit, error.scope) == ("tokens", "key")
    assert error.retry_after == pytest.approx(6.0)
    assert str(error) == (
        "Rate limit reached for tokens per minute (TPM) on key k9: limit 10000, used 9000, requested 2000. "
        "Try again in 6s."
    )
    assert error.headers["x-ratelimit-limit-tokens"] == "10000"
    assert error.headers["x-ratelimit-remaining-tokens"] == "1000"
    assert error.headers["x-ratelimit-reset-tokens"] == "54s"
    assert error.headers["x-ratelimit-remaining-requests"] == "999"
