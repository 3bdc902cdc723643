"""OpenAI's ``x-ratelimit-*`` headers and its way of writing durations."""

from __future__ import annotations

import math
from collections.abc import Iterable

from strata.throttle.lease import RateLease


def format_duration(seconds: float) -> str:
    """A duration the way OpenAI's headers write it (Go's style): ``250ms``, ``1.2s``, ``6m0s``.

    Rounded up to the millisecond, so that a client waiting that long is never early.
    """
    ms = math.ceil(seconds * 1000 - 1e-6)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _tightest(leases: Iterable[RateLease | None], now: float) -> tuple[int, int, float] | None:
    """(limit, remaining, reset) of the lease that leaves the least room: the one that binds."""
    best: tuple[int, int, float] | None = None
    for lease in leases:
        if lease is None:
            continue
        with lease.lock:
            remaining, reset = lease.remaining(now)
        if best is None or remaining < best[1]:
            best = (lease.limit, remaining, reset)
    return best


def rate_limit_headers(
    requests: Iterable[RateLease | None], tokens: Iterable[RateLease | None], now: float
) -> dict[str, str]:
    """The six headers, per dimension from the tightest of the key's and the tenant's buckets;
    a dimension without any limit has no headers."""
    headers: dict[str, str] = {}
    for name, leases in (("requests", requests), ("tokens", tokens)):
        tightest = _tightest(leases, now)
        if tightest is not None:
            limit, remaining, reset = tightest
            headers[f"x-ratelimit-limit-{name}"] = str(limit)
            headers[f"x-ratelimit-remaining-{name}"] = str(remaining)
            headers[f"x-ratelimit-reset-{name}"] = format_duration(reset)
    return headers
