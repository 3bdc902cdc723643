"""The bucket store on DynamoDB: one item per bucket, every write one conditional update.

Taking from a rate bucket has two variants, because DynamoDB cannot compute ``max(tat, now)``:
"busy" (``tat >= now``: ``SET tat = tat + :inc`` if the result stays within ``now + tau``) and
"idle" (no tat or ``tat < now``: ``SET tat = :now + :inc``). A failed condition returns the old
item (``ReturnValuesOnConditionCheckFailure=ALL_OLD``), which tells the next step without a read:
the other variant, a refusal, or (the item changed between) another try.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from strata.throttle.exceptions import BucketContentionError
from strata.throttle.store import (
    RATE_BUCKET_TTL_S,
    BucketStore,
    DailyResult,
    TakeResult,
    instant,
    seconds_to_give_back,
    seconds_to_take,
)

logger = logging.getLogger(__name__)

# Each retry means another container changed the item between our two writes; a handful is
# plenty even when many containers share one hot bucket.
_MAX_ATTEMPTS = 8
# A give-back smaller than a microsecond is rounding noise, not worth a round trip.
_NOT_WORTH_A_CALL = Decimal("1e-6")

_BUSY_CONDITION = "tat BETWEEN :now AND :latest"
_BUSY_UNBOUNDED_CONDITION = "tat >= :now"
_IDLE_CONDITION = "attribute_not_exists(tat) OR tat < :now"


class DynamoDBBucketStore(BucketStore):
    """Buckets in ``table`` (partition key ``bucket``, TTL attribute ``expires_at``).

    Takes a boto3 ``Table`` resource (its client is thread-safe); numbers go as ``Decimal``.
    """

    def __init__(self, table: Any) -> None:
        self._table = table
        # Last tat seen per bucket: picks the variant likely to succeed first. Only a hint.
        self._hints: dict[str, float] = {}

    def take(self, bucket: str, seconds: float, *, now: float, tau: float | None) -> TakeResult:
        inc = seconds_to_take(seconds)
        now_d = instant(now)
        if inc <= 0:
            return TakeResult(granted=True, tat=max(now, self._hints.get(bucket, now)))
        if tau is not None and inc > instant(tau):
            return TakeResult(granted=False, tat=max(now, self._hints.get(bucket, now)))
        latest = None if tau is None else now_d + instant(tau) - inc
        hint = self._hints.get(bucket)
        idle = hint is None or hint < now
        for _ in range(_MAX_ATTEMPTS):
            outcome = self._idle(bucket, inc, now_d) if idle else self._busy(bucket, inc, now_d, latest)
            if isinstance(outcome, TakeResult):
                self._hints[bucket] = outcome.tat
                return outcome
            old = outcome
            if old is None or old < now:
                idle = True
            elif latest is not None and old > float(latest):
                self._hints[bucket] = old
                return TakeResult(granted=False, tat=old)
            else:
                idle = False
        raise BucketContentionError(f"rate bucket {bucket!r} kept changing for {_MAX_ATTEMPTS} tries")

    # Each variant returns its TakeResult, or on a failed condition the old tat (None: no item).

    def _busy(self, bucket: str, inc: Decimal, now: Decimal, latest: Decimal | None) -> TakeResult | float | None:
        values = {":inc": inc, ":now": now, ":exp": int(now) + RATE_BUCKET_TTL_S}
        if latest is not None:
            values[":latest"] = latest
        try:
            reply = self._table.update_item(
                Key={"bucket": bucket},
                UpdateExpression="SET tat = tat + :inc, expires_at = :exp",
                ConditionExpression=_BUSY_CONDITION if latest is not None else _BUSY_UNBOUNDED_CONDITION,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            return _old_number(error, "tat")
        return TakeResult(granted=True, tat=float(reply["Attributes"]["tat"]))

    def _idle(self, bucket: str, inc: Decimal, now: Decimal) -> TakeResult | float | None:
        start = now + inc
        try:
            self._table.update_item(
                Key={"bucket": bucket},
                UpdateExpression="SET tat = :start, expires_at = :exp",
                ConditionExpression=_IDLE_CONDITION,
                ExpressionAttributeValues={":start": start, ":now": now, ":exp": int(now) + RATE_BUCKET_TTL_S},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            return _old_number(error, "tat")
        return TakeResult(granted=True, tat=float(start))

    def give_back(self, bucket: str, seconds: float) -> None:
        dec = seconds_to_give_back(seconds)
        if dec < _NOT_WORTH_A_CALL:
            return
        try:
            self._table.update_item(
                Key={"bucket": bucket},
                UpdateExpression="SET tat = tat - :dec",
                ConditionExpression="attribute_exists(tat)",
                ExpressionAttributeValues={":dec": dec},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            # Expired by TTL: a missing bucket is full already.
        self._hints.pop(bucket, None)

    def add_daily(self, bucket: str, n: int, *, quota: int | None, expires_at: int) -> DailyResult:
        if quota is not None and n > quota:
            return DailyResult(granted=False, used=0)
        params: dict[str, Any] = {
            "Key": {"bucket": bucket},
            "UpdateExpression": "SET expires_at = :exp ADD used :n",
            "ExpressionAttributeValues": {":n": n, ":exp": expires_at},
            "ReturnValues": "UPDATED_NEW",
        }
        if quota is not None:
            params["ConditionExpression"] = "attribute_not_exists(used) OR used <= :room"
            params["ExpressionAttributeValues"][":room"] = quota - n
            params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            reply = self._table.update_item(**params)
        except ClientError as error:
            used = _old_number(error, "used")
            return DailyResult(granted=False, used=int(used or 0))
        return DailyResult(granted=True, used=int(reply["Attributes"]["used"]))

    def read(self, buckets: Sequence[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        names = list(dict.fromkeys(buckets))
        if not names:
            return found
        name = self._table.name
        pending: dict[str, Any] = {
            name: {
                "Keys": [{"bucket": bucket} for bucket in names],
                "ConsistentRead": True,
                "ProjectionExpression": "#b, tat, used",
                "ExpressionAttributeNames": {"#b": "bucket"},
            }
        }
        for attempt in range(_MAX_ATTEMPTS):
            reply = self._table.meta.client.batch_get_item(RequestItems=pending)
            for item in reply["Responses"].get(name, []):
                value = item.get("tat", item.get("used"))
                if value is not None:
                    found[item["bucket"]] = float(value)
            pending = reply.get("UnprocessedKeys") or {}
            if not pending:
                return found
            time.sleep(0.01 * 2**attempt)
        raise BucketContentionError(f"could not read rate buckets {names!r}: keys stayed unprocessed")


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _old_number(error: ClientError, attribute: str) -> float | None:
    """The attribute of the item that failed the condition; re-raises anything but that."""
    if _code(error) != "ConditionalCheckFailedException":
        raise error
    value = (error.response.get("Item") or {}).get(attribute)
    if value is None:
        return None
    # The old item of a failed condition comes back in the wire format, even through a resource.
    return float(value["N"] if isinstance(value, dict) else value)
