"""Reading the interaction log back: list a date range's partitions, parse their JSON Lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from pydantic import ValidationError

from strata.interactions.exceptions import InvalidDateRangeError
from strata.interactions.types import SCHEMA_VERSION, Interaction
from strata.interactions.writer import DEFAULT_PREFIX, partition_prefix

logger = logging.getLogger(__name__)


class InteractionReader:
    def __init__(self, s3: Any, bucket: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix

    def read(self, since: date, until: date, *, tenant: str | None = None) -> Iterator[Interaction]:
        """Every interaction settled from ``since`` to ``until`` (both days included), day by day.

        A line that does not parse (a truncated object, a newer schema) is logged and skipped, so
        one bad object cannot hide a month of log.
        """
        if until < since:
            raise InvalidDateRangeError(f"until ({until}) is before since ({since})")
        day = since
        while day <= until:
            for key in self._keys(partition_prefix(self._prefix, day)):
                for interaction in self._parse(key):
                    if tenant is None or interaction.tenant == tenant:
                        yield interaction
            day += timedelta(days=1)

    def _keys(self, prefix: str) -> Iterator[str]:
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".jsonl"):
                    yield obj["Key"]

    def _parse(self, key: str) -> Iterator[Interaction]:
        body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")
        for number, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                if raw.get("schema_version", 1) > SCHEMA_VERSION:
                    logger.warning("%s:%d: schema %s is newer than this reader's", key, number, raw["schema_version"])
                    continue
                yield Interaction.model_validate(raw)
            except (ValueError, ValidationError, AttributeError) as error:
                logger.warning("%s:%d: skipped an unreadable interaction: %s", key, number, error)
