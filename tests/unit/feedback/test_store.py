"""The feedback store against moto's DynamoDB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from strata.chat import new_request_id
from strata.feedback import FeedbackNotFoundError, FeedbackStore, InvalidFeedbackError
from strata_local.aws import create_tables


@pytest.fixture
def store() -> Iterator[FeedbackStore]:
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield FeedbackStore(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-feedback"))


def test_feedback_is_kept_by_request_id_and_a_second_rating_replaces_the_first(store: FeedbackStore) -> None:
    request_id = new_request_id()  # the id a chat answer carries
    store.put("acme", request_id, rating=1, key_id="k1")
    second = store.put("acme", request_id, rating=-1, comment="cites the wrong page", key_id="k2")

    found = store.get("acme", request_id)
    assert found == second
    assert (found.rating, found.comment, found.key_id) == (-1, "cites the wrong page", "k2")
    assert store.list("acme") == [second]


def test_feedback_is_per_tenant(store: FeedbackStore) -> None:
    request_id = new_request_id()
    store.put("acme", request_id, rating=1, key_id="k1")

    with pytest.raises(FeedbackNotFoundError):
        store.get("globex", request_id)
    assert store.list("globex") == []
    store.put("globex", request_id, rating=-1, key_id="g1")  # globex's own, not acme's
    assert store.get("acme", request_id).rating == 1


def test_list_pages_through_the_tenants_feedback(store: FeedbackStore) -> None:
    ids = sorted(uuid.uuid4().hex for _ in range(5))
    for request_id in ids:
        store.put("acme", request_id, rating=1, key_id="k")

    first = store.list("acme", 2)
    rest = store.list("acme", 100, after=first[-1].request_id)

    assert [f.request_id for f in first + rest] == ids
    assert len(store.list("acme")) == 5


@pytest.mark.parametrize(
    ("request_id", "rating", "comment", "param"),
    [
        ("not-a-request-id", 1, None, "request_id"),
        ("A" * 32, 1, None, "request_id"),
        ("chatcmpl-" + "a" * 32, 1, None, "request_id"),
        ("a" * 32, 0, None, "rating"),
        ("a" * 32, 5, None, "rating"),
        ("a" * 32, True, None, "rating"),
        ("a" * 32, 1, "x" * 2001, "comment"),
    ],
)
def test_bad_feedback_is_refused_naming_the_field(
    store: FeedbackStore, request_id: str, rating: Any, comment: str | None, param: str
) -> None:
    with pytest.raises(InvalidFeedbackError) as raised:
        store.put("acme", request_id, rating=rating, comment=comment, key_id="k")
    assert raised.value.param == param
    assert store.list("acme") == []


def test_a_comment_of_2000_characters_is_kept_whole(store: FeedbackStore) -> None:
    request_id = new_request_id()
    store.put("acme", request_id, rating=-1, comment="é" * 2000, key_id="k")
    assert store.get("acme", request_id).comment == "é" * 2000


def test_list_limits_are_bounded(store: FeedbackStore) -> None:
    for limit in (0, 1001):
        with pytest.raises(InvalidFeedbackError):
            store.list("acme", limit)
