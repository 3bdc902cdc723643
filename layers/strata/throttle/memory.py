"""A bucket store in memory, one lock around every primitive: the semantics (and the decimal
arithmetic) of the DynamoDB store without AWS, for unit tests of the limiter and single-process
tools."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from decimal import Decimal

from strata.throttle.store import (
    BucketStore,
    DailyResult,
    TakeResult,
    instant,
    seconds_to_give_back,
    seconds_to_take,
)


class InMemoryBucketStore(BucketStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tat: dict[str, Decimal] = {}
        self._used: dict[str, int] = {}
        self._expires: dict[str, int] = {}

    def take(self, bucket: str, seconds: float, *, now: float, tau: float | None) -> TakeResult:
        inc, now_d = seconds_to_take(seconds), instant(now)
        with self._lock:
            tat = self._tat.get(bucket)
            start = now_d if tat is None or tat < now_d else tat
            if tau is not None and start + inc > now_d + instant(tau):
                return TakeResult(granted=False, tat=float(start))
            self._tat[bucket] = start + inc
            return TakeResult(granted=True, tat=float(start + inc))

    def give_back(self, bucket: str, seconds: float) -> None:
        dec = seconds_to_give_back(seconds)
        with self._lock:
            if bucket in self._tat:
                self._tat[bucket] -= dec

    def add_daily(self, bucket: str, n: int, *, quota: int | None, expires_at: int) -> DailyResult:
        with self._lock:
            used = self._used.get(bucket, 0)
            if quota is not None and used + n > quota:
                return DailyResult(granted=False, used=used)
            self._used[bucket] = used + n
            self._expires[bucket] = expires_at
            return DailyResult(granted=True, used=used + n)

    def read(self, buckets: Sequence[str]) -> dict[str, float]:
        with self._lock:
            found: dict[str, float] = {}
            for bucket in buckets:
                if bucket in self._tat:
                    found[bucket] = float(self._tat[bucket])
                elif bucket in self._used:
                    found[bucket] = float(self._used[bucket])
            return found
