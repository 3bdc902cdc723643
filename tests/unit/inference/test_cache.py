from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from strata.config import RESOURCES
from strata.inference import (
    CachedEmbedder,
    ChatRequest,
    Completion,
    Message,
    ResponseCache,
    Usage,
    cache_key,
    is_cacheable,
)

REQUEST = ChatRequest(messages=(Message("user", "What do kangaroos eat?"),), max_tokens=64, temperature=0)


@pytest.fixture
def table() -> Iterator[object]:
    spec = RESOURCES.response_cache_table
    with mock_aws():
        yield boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName=spec.name,
            KeySchema=[{"AttributeName": spec.partition_key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": spec.partition_key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def key(**overrides) -> str:
    fields = {"tenant": "acme", "alias": "default", "request": REQUEST, "sources": ["d1:0:abc"]} | overrides
    return cache_key(**fields)


def test_the_key_changes_with_everything_that_shapes_the_answer() -> None:
    assert key() == key(
        request=ChatRequest(messages=(Message("user", "  What do kangaroos  eat? "),), max_tokens=64, temperature=0)
    )
    assert key() != key(tenant="globex")
    assert key() != key(alias="backup")
    assert key() != key(sources=["d1:0:abd"])
    assert key() != key(request=ChatRequest(messages=REQUEST.messages, max_tokens=65, temperature=0))


def test_only_deterministic_requests_are_cacheable() -> None:
    assert is_cacheable(REQUEST)
    assert not is_cacheable(ChatRequest(messages=REQUEST.messages, max_tokens=64))
    assert not is_cacheable(ChatRequest(messages=REQUEST.messages, max_tokens=64, temperature=0.7))


def test_an_answer_comes_back_until_it_expires(table) -> None:
    now = [1_000.0]
    cache = ResponseCache(table, ttl_s=60, clock=lambda: now[0])
    cache.put("k", Completion("Grass [1].", "stop", Usage(30, 4), "default"))
    assert cache.get("k") == Completion("Grass [1].", "stop", Usage(30, 4), "default")
    now[0] += 61
    assert cache.get("k") is None  # DynamoDB's TTL deletes late; the cache does not serve stale answers


def test_a_broken_cache_is_a_miss_not_an_error() -> None:
    class Down:
        def get_item(self, **_):
            raise ConnectionError

        def put_item(self, **_):
            raise ConnectionError

    cache = ResponseCache(Down())
    cache.put("k", Completion("x", "stop"))
    assert cache.get("k") is None


def test_the_same_question_is_embedded_once() -> None:
    class Counting:
        calls: list[list[str]] = []

        def embed(self, texts):
            self.calls.append(list(texts))
            return [[float(len(t))] for t in texts]

    inner = Counting()
    embedder = CachedEmbedder(inner, max_entries=2)
    assert embedder.embed(["a", "bb"]) == [[1.0], [2.0]]
    assert embedder.embed(["bb", "ccc"]) == [[2.0], [3.0]]
    assert inner.calls == [["a", "bb"], ["ccc"]]
    embedder.embed(["a"])  # evicted by the LRU bound
    assert inner.calls[-1] == ["a"]
