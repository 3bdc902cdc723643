"""A circuit breaker per model target, its state shared by every Lambda container.

closed ──(``failure_threshold`` failures in a row)──▶ open ──(``cooldown_s``)──▶ half-open: one
probe is let through (the container that wins a conditional write); its success closes the
breaker, its failure opens it again. The state lives in one DynamoDB item per target; each
container reads it through a short local cache, and writes only on changes, so the hot path of a
healthy target costs one read per ``cache_ttl_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

logger = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0  # consecutive
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
    failure_threshold: int = 5
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
        record = self._read(target)
        if record.state is BreakerState.CLOSED and record.failures == 0:
            return  # the hot path: nothing changes, nothing is written
        closed = BreakerRecord(version=record.version + 1)
        if self._write(target, record, closed) and record.state is not BreakerState.CLOSED:
            logger.info("breaker of %s closed", target)

    def record_failure(self, target: str, error: Exception | str) -> None:
        message = str(error)
        for _ in range(3):  # lost races re-read and re-apply
            record = self._read(target, fresh=True)
            now = self._clock()
            failures = record.failures + 1
            opens = record.state is BreakerState.HALF_OPEN or failures >= self.policy.failure_threshold
            if record.state is BreakerState.OPEN:
                updated = replace(record, failures=failures, last_error=message, version=record.version + 1)
            elif opens:
                updated = BreakerRecord(
                    BreakerState.OPEN, failures, opened_at=now, last_error=message, version=record.version + 1
                )
            else:
                updated = replace(record, failures=failures, last_error=message, version=record.version + 1)
            if self._write(target, record, updated):
                if opens and record.state is not BreakerState.OPEN:
                    logger.warning("breaker of %s opened: %s", target, message)
                return

    def retry_after(self, target: str) -> float:
        """Seconds until ``target`` may be tried again (0 when it may be now)."""
        record = self._read(target)
        if record.state is BreakerState.CLOSED:
            return 0.0
        return max(0.0, record.opened_at + self.policy.cooldown_s - self._clock())

    def _read(self, target: str, *, fresh: bool = False) -> BreakerRecord:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(target)
        if cached and not fresh and now - cached[0] < self.policy.cache_ttl_s:
            return cached[1]
        try:
            record = self._store.get(target)
        except Exception:
            logger.exception("breaker store unreadable; treating %s as closed", target)
            return cached[1] if cached else BreakerRecord()
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
