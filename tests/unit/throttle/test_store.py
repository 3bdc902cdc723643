"""The store contract, the same for the in-memory store and DynamoDB (on moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from strata.throttle import BucketStore, DynamoDBBucketStore, InMemoryBucketStore
from tests.unit.throttle.fakes import NOON, moto_rate_limits_table


@pytest.fixture(scope="module")
def table() -> Iterator[Any]:
    # One moto table for the module (building boto3 clients is the slow part); emptied per test.
    with moto_rate_limits_table() as table:
        yield table


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[BucketStore]:
    if request.param == "memory":
        yield InMemoryBucketStore()
        return
    table = request.getfixturevalue("table")
    yield DynamoDBBucketStore(table)
    for item in table.scan(ProjectionExpression="#b", ExpressionAttributeNames={"#b": "bucket"})["Items"]:
        table.delete_item(Key=item)


def test_take_from_a_missing_bucket_starts_it_at_now(store: BucketStore) -> None:
    result = store.take("key#requests#k1", 0.6, now=NOON, tau=60.0)

    assert result.granted
    assert result.tat == pytest.approx(NOON + 0.6)
    assert store.read(["key#requests#k1"]) == {"key#requests#k1": pytest.approx(NOON + 0.6)}


def test_take_accumulates_while_busy_and_refuses_past_the_tolerance(store: BucketStore) -> None:
    assert store.take("b", 50.0, now=NOON, tau=60.0).granted
    assert store.take("b", 10.0, now=NOON, tau=60.0).granted

    refused = store.take("b", 0.6, now=NOON, tau=60.0)

    assert not refused.granted
    # The refusing tat tells the caller how long to wait: until tat + 0.6 - 60.
    assert refused.tat == pytest.approx(NOON + 60.0)
    assert store.read(["b"])["b"] == pytest.approx(NOON + 60.0)


def test_take_restarts_an_idle_bucket_from_now(store: BucketStore) -> None:
    store.take("b", 30.0, now=NOON, tau=60.0)

    result = store.take("b", 6.0, now=NOON + 100, tau=60.0)

    assert result.granted
    assert result.tat == pytest.approx(NOON + 106.0)


def test_take_without_tolerance_charges_past_the_limit(store: BucketStore) -> None:
    store.take("b", 60.0, now=NOON, tau=60.0)

    assert store.take("b", 30.0, now=NOON, tau=None).granted
    assert store.read(["b"])["b"] == pytest.approx(NOON + 90.0)


def test_a_take_larger_than_the_tolerance_is_refused(store: BucketStore) -> None:
    assert not store.take("b", 61.0, now=NOON, tau=60.0).granted
    assert store.read(["b"]) == {}


def test_give_back_moves_tat_back_and_leaves_missing_buckets_missing(store: BucketStore) -> None:
    store.take("b", 30.0, now=NOON, tau=60.0)

    store.give_back("b", 12.0)
    store.give_back("missing", 12.0)

    assert store.read(["b", "missing"]) == {"b": pytest.approx(NOON + 18.0)}


def test_add_daily_counts_within_the_quota_and_reports_the_refusing_count(store: BucketStore) -> None:
    assert store.add_daily("day#acme#2023-11-14", 600, quota=1000, expires_at=0).used == 600

    refused = store.add_daily("day#acme#2023-11-14", 401, quota=1000, expires_at=0)
    assert not refused.granted
    assert refused.used == 600
    assert store.add_daily("day#acme#2023-11-14", 400, quota=1000, expires_at=0).used == 1000
    assert store.add_daily("day#acme#2023-11-14", -300, quota=None, expires_at=0).used == 700
    assert store.add_daily("day#acme#2023-11-14", 10**6, quota=None, expires_at=0).granted


def test_read_returns_rate_and_day_buckets_and_omits_missing_ones(store: BucketStore) -> None:
    store.take("r", 1.0, now=NOON, tau=60.0)
    store.add_daily("d", 7, quota=None, expires_at=0)

    assert store.read(["r", "d", "x"]) == {"r": pytest.approx(NOON + 1.0), "d": 7.0}
    assert store.read([]) == {}


def test_dynamodb_items_carry_a_ttl(table: Any) -> None:
    store = DynamoDBBucketStore(table)
    store.take("ttl-r", 1.0, now=NOON, tau=60.0)
    store.add_daily("ttl-d", 7, quota=None, expires_at=int(NOON) + 3 * 86_400)

    items = {item["bucket"]: item for item in table.scan()["Items"]}

    assert int(items["ttl-r"]["expires_at"]) > NOON + 60
    assert int(items["ttl-d"]["expires_at"]) == int(NOON) + 3 * 86_400


def test_dynamodb_store_joins_a_bucket_another_container_made_busy(table: Any) -> None:
    first, second = DynamoDBBucketStore(table), DynamoDBBucketStore(table)
    first.take("shared", 30.0, now=NOON, tau=60.0)

    # ``second`` has never seen the bucket, tries the idle variant first and must fall back.
    assert second.take("shared", 20.0, now=NOON, tau=60.0).tat == pytest.approx(NOON + 50.0)
    assert not second.take("shared", 20.0, now=NOON, tau=60.0).granted
    assert first.read(["shared"])["shared"] == pytest.approx(NOON + 50.0)


def test_dynamodb_store_recovers_from_a_stale_hint(table: Any) -> None:
    first, second = DynamoDBBucketStore(table), DynamoDBBucketStore(table)
    first.take("stale", 30.0, now=NOON, tau=60.0)
    second.take("stale", 1.0, now=NOON, tau=60.0)
    second.give_back("stale", 31.0)

    # ``first`` still believes the bucket busy until NOON + 30; it is idle.
    result = first.take("stale", 6.0, now=NOON + 1, tau=60.0)

    assert result.granted
    assert result.tat == pytest.approx(NOON + 7.0)
