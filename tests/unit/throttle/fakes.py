"""Test doubles for the throttle tests: a clock that moves when told, a store that counts calls,
the rate-limits table on moto."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
from moto import mock_aws

from strata.throttle import BucketStore, DailyResult, TakeResult
from strata_local.aws import create_tables

RATE_LIMITS_TABLE = "strata-rate-limits"
# Noon UTC: far from midnight unless a test goes there.
NOON = 1_700_000_000.0 - (1_700_000_000 % 86_400) + 43_200


class FakeClock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingStore(BucketStore):
    """Passes every call to ``inner`` and counts them by primitive: the table round trips."""

    def __init__(self, inner: BucketStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def take(self, bucket: str, seconds: float, *, now: float, tau: float | None) -> TakeResult:
        self._count("take")
        return self.inner.take(bucket, seconds, now=now, tau=tau)

    def give_back(self, bucket: str, seconds: float) -> None:
        self._count("give_back")
        self.inner.give_back(bucket, seconds)

    def add_daily(self, bucket: str, n: int, *, quota: int | None, expires_at: int) -> DailyResult:
        self._count("add_daily")
        return self.inner.add_daily(bucket, n, quota=quota, expires_at=expires_at)

    def read(self, buckets: Sequence[str]) -> dict[str, float]:
        self._count("read")
        return self.inner.read(buckets)


@contextlib.contextmanager
def moto_rate_limits_table() -> Iterator[Any]:
    """The rate-limits table of RESOURCES on moto, as the boto3 ``Table`` resource."""
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield boto3.resource("dynamodb", region_name="us-east-1").Table(RATE_LIMITS_TABLE)
