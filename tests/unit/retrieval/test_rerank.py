from __future__ import annotations

import json

import httpx
import pytest

from strata.retrieval import HttpReranker, RerankError, RerankUnavailableError
from tests.fakes import hit

URL = "http://reranker.test/rerank"
HITS = [hit("a", 0, 0.9, "alpha"), hit("b", 0, 0.8, "beta"), hit("c", 0, 0.7, "gamma")]


def reranker_answering(handler: httpx.MockTransport | None = None, **kwargs: object) -> HttpReranker:
    return HttpReranker(URL, client=httpx.Client(transport=handler), **kwargs)  # type: ignore[arg-type]


def test_http_reranker_sends_tei_shaped_body_and_orders_hits_by_its_scores() -> None:
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(
            200, json=[{"index": 2, "score": 0.99}, {"index": 0, "score": 0.5}, {"index": 1, "score": 0.1}]
        )

    reranked = reranker_answering(httpx.MockTransport(handler)).rerank("which letter?", HITS)

    assert sent == [{"query": "which letter?", "texts": ["alpha", "beta", "gamma"]}]
    assert [(h.document_id, h.score) for h in reranked] == [("c", 0.99), ("a", 0.5), ("b", 0.1)]


def test_http_reranker_sorts_an_unsorted_answer() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json=[{"index": 0, "score": 0.1}, {"index": 1, "score": 0.7}])
    )

    reranked = reranker_answering(transport).rerank("q", HITS[:2])

    assert [h.document_id for h in reranked] == ["b", "a"]


def test_http_reranker_does_not_call_for_no_hits() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    assert reranker_answering(httpx.MockTransport(handler)).rerank("q", []) == []


@pytest.mark.parametrize(
    "payload",
    [{"error": "x"}, [{"index": 7, "score": 0.1}], [{"index": 0}], [{"index": True, "score": 1.0}], ["0.5"]],
)
def test_http_reranker_rejects_an_answer_that_is_not_a_ranking(payload: object) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=payload))

    with pytest.raises(RerankError, match=URL):
        reranker_answering(transport).rerank("q", HITS)


def test_http_reranker_reports_a_client_error_as_a_refusal_not_an_outage() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(413, json={"error": "too big"}))

    with pytest.raises(RerankError, match="HTTP 413") as raised:
        reranker_answering(transport).rerank("q", HITS)
    assert not isinstance(raised.value, RerankUnavailableError)


def test_http_reranker_reports_a_server_error_as_unavailable() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(503))

    with pytest.raises(RerankUnavailableError, match="HTTP 503"):
        reranker_answering(transport).rerank("q", HITS)


def test_http_reranker_reports_a_timeout_with_the_endpoint() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(RerankUnavailableError, match=f"{URL} timed out"):
        reranker_answering(httpx.MockTransport(handler), timeout_s=0.5).rerank("q", HITS)


def test_http_reranker_passes_its_timeout_on_each_request() -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json=[{"index": 0, "score": 1.0}])

    reranker_answering(httpx.MockTransport(handler), timeout_s=0.25).rerank("q", HITS[:1])

    assert seen[0]["read"] == 0.25
