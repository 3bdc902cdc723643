"""The interaction log's writer: records are buffered in memory and written to S3 as JSON Lines
by a background thread, off the request's critical path.

Layout: ``<prefix>date=YYYY-MM-DD/HH-<uuid>.jsonl`` (UTC, by when each record settled), one object
per flush and hour, so a reader lists only the days it wants and Athena or Glue can read the
prefix as a table partitioned by ``date``.

Nothing here may fail a chat request: ``record`` never raises, a failed write is logged and its
records dropped. Nothing may be lost at shutdown either: ``close`` (registered with ``atexit`` by
``build_interaction_writer``) writes what is still buffered.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from strata.interactions.types import Interaction

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "interactions/"


def partition_prefix(prefix: str, day: date) -> str:
    """The key prefix of one day's objects."""
    return f"{prefix}date={day.isoformat()}/"


def object_key(prefix: str, at: datetime) -> str:
    at = at.astimezone(UTC)
    return f"{partition_prefix(prefix, at.date())}{at.hour:02d}-{uuid.uuid4().hex}.jsonl"


class InteractionWriter:
    """Buffers interactions and writes them to ``s3://bucket/prefix`` in batches.

    Parameters
    ----------
    s3
        A boto3 S3 client.
    linger_s
        How long the thread waits for more records after the first one before it writes: fewer,
        larger objects, at the cost of records held in memory that long.
    max_records
        A buffer this full is written at once.
    max_buffered
        Records beyond this many waiting (S3 unreachable for a long time) are dropped, oldest
        kept, so that memory stays bounded.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        linger_s: float = 1.0,
        max_records: int = 200,
        max_buffered: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix
        self._linger_s = linger_s
        self._max_records = max_records
        self._max_buffered = max_buffered
        self._clock = clock
        self._buffer: list[Interaction] = []
        self._first_at: float | None = None
        self._condition = threading.Condition()
        self._write_lock = threading.Lock()  # one flush at a time: the thread's, or close()'s
        self._thread: threading.Thread | None = None
        self._closed = False
        self.dropped = 0  # records lost to a full buffer or a failed write (also logged)

    def record(self, interaction: Interaction) -> None:
        """Queue one interaction; never raises, never blocks on S3."""
        try:
            with self._condition:
                if self._closed:
                    self._write([interaction])  # after close (atexit already ran): write it now
                    return
                if len(self._buffer) >= self._max_buffered:
                    self.dropped += 1
                    logger.warning("interaction log buffer full: dropped %s", interaction.request_id)
                    return
                self._buffer.append(interaction)
                if self._first_at is None:
                    self._first_at = self._clock()
                self._ensure_thread()
                self._condition.notify()
        except Exception:
            self.dropped += 1
            logger.exception("could not queue interaction %s", getattr(interaction, "request_id", "?"))

    def flush(self) -> None:
        """Write everything buffered now (the caller waits)."""
        with self._condition:
            batch = self._take()
        self._write(batch)

    def close(self) -> None:
        """Stop the thread and write what is left; later records are written one by one."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self.flush()

    # The background thread.

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="interaction-log", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._closed and not self._due():
                    self._condition.wait(timeout=self._wait_s())
                if self._closed:
                    return  # close() writes the rest
                batch = self._take()
            self._write(batch)

    def _due(self) -> bool:
        if not self._buffer or self._first_at is None:
            return False
        return len(self._buffer) >= self._max_records or self._clock() - self._first_at >= self._linger_s

    def _wait_s(self) -> float | None:
        if self._first_at is None:
            return None
        return max(0.0, self._linger_s - (self._clock() - self._first_at))

    def _take(self) -> list[Interaction]:
        batch, self._buffer, self._first_at = self._buffer, [], None
        return batch

    def _write(self, batch: list[Interaction]) -> None:
        if not batch:
            return
        groups: dict[tuple[date, int], list[Interaction]] = defaultdict(list)
        for interaction in batch:
            at = interaction.at.astimezone(UTC)
            groups[(at.date(), at.hour)].append(interaction)
        with self._write_lock:
            for records in groups.values():
                key = object_key(self._prefix, records[0].at)
                body = "".join(record.model_dump_json() + "\n" for record in records).encode()
                try:
                    self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/x-ndjson")
                except Exception:
                    self.dropped += len(records)
                    logger.exception("could not write %d interactions to s3://%s/%s", len(records), self._bucket, key)
