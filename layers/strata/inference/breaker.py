"""A circuit breaker per model target, its state shared by every Lambda container.

closed ──(a failure rate of ``failure_rate`` over the last ``window`` calls, at least
``min_calls`` of them)──▶ open ──(``cooldown_s``)──▶ half-open: one probe is let through (the
container that wins a conditional write); its success closes the breaker, its failure opens it
again. Each container judges the calls it made itself (a rate over a window, not "N in a row",
which concurrent callers cannot agree on); the state they act on lives in one DynamoDB item per
target, read through a short local cache and written only on a transition, so neither a healthy
nor a failing call costs a write.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from strata.observability.metrics import GATEWAY_SERVICE, BreakerMetric, Dimension, emit_metric

logger = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0  # failed calls in the window that opened it
    opened_at: float = 0.0
    probe_until: float = 0.0  # a half-open probe in flight holds the target until then
    last_error: str | None = None
    version: int = 0  # optimistic concurrency: each write expects the version it read


class BreakerStore(ABC):
    """Where breaker records live; ``put`` succeeds only over the version it expects."""

    @abstractmethod
    def get(self, target: str) -> BreakerRecord: ...

    @abstractmethod
    def put(self, target: str, record: BreakerRecord, *, expected_version: int) -> bool:
        """Write ``record`` (its version already bumped); ``False`` if someone else wrote first."""


class InMemoryBreakerStore(BreakerStore):
    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}
        self._lock = threading.Lock()

    def get(self, target: str) -> BreakerRecord:
        return self._records.get(target, BreakerRecord())

    def put(self, target: str, record: BreakerRecord, *, expected_version: int) -> bool:
        with self._lock:
            if self._records.get(target, BreakerRecord()).version != expected_version:
                return False
            self._records[target] = record
            return True


class DynamoDBBreakerStore(BreakerStore):
    """One item per target in the breakers table (``RESOURCES.breakers_table``)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, target: str) -> BreakerRecord:
        item = self._table.get_item(Key={"target": target}, ConsistentRead=True).get("Item")
        if not item:
            return BreakerRecord()
        return BreakerRecord(
            state=BreakerState(item["state"]),
            failures=int(item.get("failures", 0)),
            opened_at=float(item.get("opened_at", 0)),
            probe_until=float(item.get("probe_until", 0)),
            last_error=item.get("last_error"),
            version=int(item.get("version", 0)),
        )

    def put(self, target: str, record: BreakerRecord, *, expected_version: int) -> bool:
        item = {
            "target": target,
            "state": record.state.value,
            "failures": record.failures,
            "opened_at": str(record.opened_at),
            "probe_until": str(record.probe_until),
            "version": record.version,
        }
        if record.last_error:
            item["last_error"] = record.last_error[:500]
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(#t)", "ExpressionAttributeNames": {"#t": "target"}}
            if expected_version == 0
            else {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": expected_version}}
        )
        try:
            self._table.put_item(Item=item, **condition)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_rate: float = 0.5
    window: int = 20  # the last calls a container judges a target by
    min_calls: int = 5  # a dead target opens after this many calls, all failed
    cooldown_s: float = 30.0
    probe_timeout_s: float = 60.0  # a probe that never reports back frees the target after this
    cache_ttl_s: float = 1.0


class CircuitBreakers:
    """The breakers of all targets. A store that fails never blocks traffic: it fails open."""

    def __init__(
        self,
        store: BreakerStore,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._cache: dict[str, tuple[float, BreakerRecord]] = {}
        self._calls: dict[str, deque[bool]] = {}  # this container's recent outcomes per target
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def state(self, target: str) -> BreakerRecord:
        return self._read(target)

    def allow(self, target: str) -> bool:
        """Whether a call to ``target`` may go out now (a half-open probe is claimed here)."""
        record = self._read(target)
        now = self._clock()
        if record.state is BreakerState.CLOSED:
            return True
        if record.state is BreakerState.OPEN and now < record.opened_at + self.policy.cooldown_s:
            return False
        if record.state is BreakerState.HALF_OPEN and now < record.probe_until:
            return False
        # Cooled down (or a probe went missing): the container whose write wins sends the probe.
        probe = replace(
            record,
            state=BreakerState.HALF_OPEN,
            probe_until=now + self.policy.probe_timeout_s,
            version=record.version + 1,
        )
        return self._write(target, record, probe)

    def record_success(self, target: str) -> None:
        self._record(target, ok=True)
        record = self._read(target)
        if record.state is BreakerState.CLOSED:
            return  # the hot path: nothing changes, nothing is written
        # A probe (or a call that started before the breaker opened) came back healthy.
        if self._write(target, record, BreakerRecord(version=record.version + 1)):
            logger.info("breaker of %s closed", target)
            _report(target, BreakerState.CLOSED)

    def record_failure(self, target: str, error: Exception | str) -> None:
        failures, calls = self._record(target, ok=False)
        record = self._read(target)
        tripped = calls >= self.policy.min_calls and failures >= self.policy.failure_rate * calls
        if record.state is BreakerState.OPEN or not (tripped or record.state is BreakerState.HALF_OPEN):
            return
        opened = BreakerRecord(
            BreakerState.OPEN, failures, opened_at=self._clock(), last_error=str(error), version=record.version + 1
        )
        if self._write(target, record, opened):
            logger.warning("breaker of %s opened (%d of the last %d calls failed): %s", target, failures, calls, error)
            _report(target, BreakerState.OPEN)
            with self._lock:
                self._calls.pop(target, None)  # judged afresh once it closes

    def trip(self, target: str, reason: str) -> None:
        """Open ``target``'s breaker now, for whoever knows it is down before any call fails."""
        self._force(target, lambda r: BreakerRecord(BreakerState.OPEN, r.failures, self._clock(), 0.0, reason))

    def reset(self, target: str) -> None:
        """Close ``target``'s breaker now (it is known to be back)."""
        self._force(target, lambda r: BreakerRecord())

    def _force(self, target: str, state: Callable[[BreakerRecord], BreakerRecord]) -> None:
        for _ in range(3):  # a lost race re-reads and writes again
            try:
                current = self._store.get(target)
            except Exception:
                logger.exception("breaker store unreadable for %s", target)
                return
            forced = replace(state(current), version=current.version + 1)
            if self._write(target, current, forced):
                if forced.state is not current.state:
                    _report(target, forced.state)
                return

    def _record(self, target: str, *, ok: bool) -> tuple[int, int]:
        """Add an outcome to this container's window; the window's (failures, calls)."""
        with self._lock:
            calls = self._calls.setdefault(target, deque(maxlen=self.policy.window))
            calls.append(ok)
            return calls.count(False), len(calls)

    def retry_after(self, target: str) -> float:
        """Seconds until ``target`` may be tried again (0 when it may be now)."""
        record = self._read(target)
        if record.state is BreakerState.CLOSED:
            return 0.0
        return max(0.0, record.opened_at + self.policy.cooldown_s - self._clock())

    def _read(self, target: str) -> BreakerRecord:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(target)
            # One caller refreshes an expired entry; the others go on with it meanwhile, so many
            # concurrent requests cost one read per ``cache_ttl_s``, not one each.
            if cached and (now - cached[0] < self.policy.cache_ttl_s or target in self._refreshing):
                return cached[1]
            self._refreshing.add(target)
        try:
            record = self._store.get(target)
        except Exception:
            logger.exception("breaker store unreadable; treating %s as closed", target)
            record = cached[1] if cached else BreakerRecord()
        finally:
            with self._lock:
                self._refreshing.discard(target)
        with self._lock:
            self._cache[target] = (now, record)
        return record

    def _write(self, target: str, current: BreakerRecord, updated: BreakerRecord) -> bool:
        try:
            won = self._store.put(target, updated, expected_version=current.version)
        except Exception:
            logger.exception("breaker store unwritable for %s", target)
            return True  # fail open: a broken store must not take the model down with it
        with self._lock:
            if won:
                self._cache[target] = (self._clock(), updated)
            else:
                self._cache.pop(target, None)  # someone else wrote: read again next time
        return won


def _report(target: str, state: BreakerState) -> None:
    """A transition as the ``BreakerOpen`` metric (1 opened, 0 closed), so the dashboard shows
    when each target's breaker tripped; half-open probes are not reported."""
    emit_metric(
        BreakerMetric.OPEN,
        1 if state is BreakerState.OPEN else 0,
        MetricUnit.Count,
        service=GATEWAY_SERVICE,
        dimensions={Dimension.TARGET: target},
    )
