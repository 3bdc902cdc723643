"""Feedback in the feedback table: partition ``tenant``, sort ``request_id``, one item per answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from strata import aws
from strata.config import Settings
from strata.feedback.exceptions import FeedbackNotFoundError, InvalidFeedbackError
from strata.feedback.types import Feedback, validate_comment, validate_rating, validate_request_id

MAX_LIST_LIMIT = 1000


class FeedbackStore:
    """Takes a boto3 DynamoDB Table (the feedback table).

    Examples
    --------
    >>> store = FeedbackStore(table)  # doctest: +SKIP
    >>> store.put("acme", answer_request_id, rating=-1, comment="cites the wrong page", key_id="k1")  # doctest: +SKIP
    """

    def __init__(self, table: Any) -> None:
        self._table = table

    def put(self, tenant: str, request_id: str, *, rating: int, comment: str | None = None, key_id: str) -> Feedback:
        """Record (or replace) the tenant's feedback on the answer ``request_id``."""
        feedback = Feedback(
            tenant=tenant,
            request_id=validate_request_id(request_id),
            rating=validate_rating(rating).value,
            comment=validate_comment(comment),
            key_id=key_id,
            created_at=datetime.now(UTC),
        )
        self._table.put_item(Item=feedback.model_dump(mode="json", exclude={"object"}, exclude_none=True))
        return feedback

    def get(self, tenant: str, request_id: str) -> Feedback:
        validate_request_id(request_id)
        item = self._table.get_item(Key={"tenant": tenant, "request_id": request_id}).get("Item")
        if not item:
            raise FeedbackNotFoundError(f"no feedback on request {request_id!r}")
        return _feedback(item)

    def list(self, tenant: str, limit: int = 100, *, after: str | None = None) -> list[Feedback]:
        """Up to ``limit`` of the tenant's feedback in request-id order, from after ``after``.

        Request ids are random, so this order is arbitrary but stable: page on with the last id.
        """
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidFeedbackError(f"must be between 1 and {MAX_LIST_LIMIT} (given {limit})", param="limit")
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("tenant").eq(tenant), "Limit": limit}
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"tenant": tenant, "request_id": validate_request_id(after)}
        found: list[Feedback] = []
        for item in self._items(**kwargs):
            found.append(_feedback(item))
            if len(found) == limit:
                break
        return found

    def _items(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        # A page stops at 1 MB: go on until the limit is met or the partition ends.
        while True:
            page = self._table.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _feedback(item: dict[str, Any]) -> Feedback:
    return Feedback.model_validate({**item, "rating": int(item["rating"])})


def build_feedback_store(settings: Settings) -> FeedbackStore:
    return FeedbackStore(aws.resource("dynamodb", settings).Table(settings.feedback_table))
