"""EmbeddingBatcher against a backend that counts its forward passes."""

from __future__ import annotations

import asyncio
import time

import pytest

from model_endpoint import ServerConfig, create_app
from model_endpoint.batching import EmbeddingBatcher, EmbedOptions
from model_endpoint.exceptions import PayloadTooLargeError
from tests.unit.model_endpoint.fakes import CountingEmbeddings, HeldChat, serving, vector

pytestmark = pytest.mark.anyio

DEFAULT = EmbedOptions(normalize=True, truncate=True)
# Generous, so that every request of a test lands inside one window even on a loaded machine.
WINDOW_S = 0.05
SERVER_WINDOW_MS = 200.0


def texts_of(n: int) -> list[str]:
    return ["x" * (i + 1) for i in range(n)]  # distinct lengths: distinct vectors


async def test_batcher_merges_concurrent_requests_into_one_pass_and_answers_each_its_own_vectors():
    backend = CountingEmbeddings()
    batcher = EmbeddingBatcher(backend, window_s=WINDOW_S, max_batch_size=32)
    texts = texts_of(8)

    results = await asyncio.gather(*(batcher.embed([text], DEFAULT) for text in texts))

    assert len(backend.passes) == 1
    assert backend.passes[0].texts == texts
    assert results == [[vector(text)] for text in texts]


async def test_batcher_keeps_each_requests_texts_together_and_in_order():
    backend = CountingEmbeddings()
    batcher = EmbeddingBatcher(backend, window_s=WINDOW_S, max_batch_size=32)
    requests = [["a", "bb"], ["ccc"], ["dddd", "eeeee", "ffffff"]]

    results = await asyncio.gather(*(batcher.embed(texts, DEFAULT) for texts in requests))

    assert len(backend.passes) == 1
    assert results == [[vector(text) for text in texts] for texts in requests]


async def test_batcher_never_puts_more_than_max_batch_size_texts_in_a_pass():
    backend = CountingEmbeddings()
    batcher = EmbeddingBatcher(backend, window_s=WINDOW_S, max_batch_size=4)
    texts = texts_of(10)

    results = await asyncio.gather(*(batcher.embed([text], DEFAULT) for text in texts))

    assert [len(p.texts) for p in backend.passes] == [4, 4, 2]
    assert results == [[vector(text)] for text in texts]


async def test_batcher_runs_a_client_batch_larger_than_the_maximum_alone():
    backend = CountingEmbeddings()
    batcher = EmbeddingBatcher(backend, window_s=WINDOW_S, max_batch_size=4)
    big = texts_of(6)

    results = await asyncio.gather(batcher.embed(big, DEFAULT), batcher.embed(["y"], DEFAULT))

    assert [p.texts for p in backend.passes] == [big, ["y"]]
    assert results == [[vector(text) for text in big], [vector("y")]]


async def test_batcher_only_merges_requests_with_identical_options():
    backend = CountingEmbeddings()
    batcher = EmbeddingBatcher(backend, window_s=WINDOW_S, max_batch_size=32)
    raw = EmbedOptions(normalize=False, truncate=True)
    left = EmbedOptions(normalize=True, truncate=True, truncate_left=True)
    calls = [("a", DEFAULT), ("bb", raw), ("ccc", DEFAULT), ("dddd", left), ("eeeee", raw)]

    results = await asyncio.gather(*(batcher.embed([text], options) for text, options in calls))

    by_options = {(p.normalize, p.truncate, p.truncate_left): p.texts for p in backend.passes}
    assert by_options == {
        (True, True, False): ["a", "ccc"],
        (False, True, False): ["bb", "eeeee"],
        (True, True, True): ["dddd"],
    }
    assert len(backend.passes) == 3
    assert results == [[vector(text, options.normalize)] for text, options in calls]


async def test_batcher_a_too_long_input_fails_only_its_own_request_with_its_own_index():
    backend = CountingEmbeddings()
    batcher = EmbeddingBatcher(backend, window_s=WINDOW_S, max_batch_size=32)
    strict = EmbedOptions(normalize=True, truncate=False)
    requests = [["ok"], ["fine", "x" * 40], ["good"]]

    results = await asyncio.gather(*(batcher.embed(texts, strict) for texts in requests), return_exceptions=True)

    assert results[0] == [vector("ok")]
    assert results[2] == [vector("good")]
    assert isinstance(results[1], PayloadTooLargeError)
    assert results[1].status_code == 413
    assert results[1].message.startswith("input 1 ")  # its index in its own request, not in the merged pass


async def test_batcher_sends_a_lone_request_once_its_window_is_over():
    backend = CountingEmbeddings(pass_s=0)
    batcher = EmbeddingBatcher(backend, window_s=0.002, max_batch_size=32)

    started = time.perf_counter()
    result = await batcher.embed(["alone"], DEFAULT)

    assert result == [vector("alone")]
    assert time.perf_counter() - started < 0.5
    assert len(backend.passes) == 1


async def test_batcher_requests_arriving_during_a_pass_share_the_next_one():
    backend = CountingEmbeddings(pass_s=0.1)
    batcher = EmbeddingBatcher(backend, window_s=0, max_batch_size=32)

    first = asyncio.create_task(batcher.embed(["first"], DEFAULT))
    await asyncio.sleep(0.03)  # the first pass is running now
    later = await asyncio.gather(*(batcher.embed([text], DEFAULT) for text in texts_of(5)))

    assert await first == [vector("first")]
    assert [p.texts for p in backend.passes] == [["first"], texts_of(5)]
    assert later == [[vector(text)] for text in texts_of(5)]


async def test_batcher_drops_a_request_whose_caller_was_cancelled_before_its_pass():
    backend = CountingEmbeddings()
    batcher = EmbeddingBatcher(backend, window_s=WINDOW_S, max_batch_size=32)

    gone = asyncio.create_task(batcher.embed(["gone"], DEFAULT))
    stays = asyncio.create_task(batcher.embed(["stays"], DEFAULT))
    await asyncio.sleep(0)
    gone.cancel()

    assert await stays == [vector("stays")]
    assert [p.texts for p in backend.passes] == [["stays"]]


async def test_batcher_aclose_waits_for_the_requests_already_queued():
    backend = CountingEmbeddings(pass_s=0.05)
    batcher = EmbeddingBatcher(backend, window_s=WINDOW_S, max_batch_size=2)
    texts = texts_of(5)
    pending = [asyncio.create_task(batcher.embed([text], DEFAULT)) for text in texts]
    await asyncio.sleep(0)

    await batcher.aclose()

    assert [len(p.texts) for p in backend.passes] == [2, 2, 1]  # all of them ran before aclose returned
    assert await asyncio.gather(*pending) == [[vector(text)] for text in texts]


# -- through the server --------------------------------------------------------------------------


@pytest.mark.parametrize(("batching", "passes"), [(True, 1), (False, 8)], ids=["on", "off"])
async def test_server_coalesces_concurrent_invocations_only_when_batching_is_on(batching: bool, passes: int):
    backend = CountingEmbeddings()
    config = ServerConfig(embedding_batching=batching, embedding_batch_window_ms=SERVER_WINDOW_MS)
    app = create_app(config, chat_backend=HeldChat(), embedding_backend=backend)
    texts = texts_of(8)

    async with serving(app) as client:
        replies = await asyncio.gather(*(client.post("/invocations", json={"inputs": text}) for text in texts))

    assert [reply.status_code for reply in replies] == [200] * 8
    assert [reply.json() for reply in replies] == [[vector(text)] for text in texts]
    assert len(backend.passes) == passes


async def test_server_answers_413_to_the_too_long_input_and_200_to_its_batch_mates():
    backend = CountingEmbeddings()
    config = ServerConfig(embedding_batch_window_ms=SERVER_WINDOW_MS)
    app = create_app(config, chat_backend=HeldChat(), embedding_backend=backend)
    bodies = [
        {"inputs": "short", "truncate": False},
        {"inputs": "x" * 40, "truncate": False},
        {"inputs": "tiny", "truncate": False},
    ]

    async with serving(app) as client:
        replies = await asyncio.gather(*(client.post("/invocations", json=body) for body in bodies))

    assert [reply.status_code for reply in replies] == [200, 413, 200]
    assert replies[1].json() == {"error": "input 0 is 40 tokens long", "error_type": "Validation"}
    assert replies[0].json() == [vector("short")]
