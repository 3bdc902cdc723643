"""The flaky mock upstream behind the gateway benchmarks: each behaviour, seen from an HTTP client."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bench.mock_upstream import Behaviour, MockUpstream, spawn_mock

FULL_ANSWER = "".join(f"tok{i} " for i in range(20))


def chat(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "mock", "messages": [{"role": "user", "content": content}], **extra}


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    payloads: list[str] = field(default_factory=list)  # the data lines, in order
    arrivals: list[float] = field(default_factory=list)  # perf_counter of each data line
    cut: bool = False  # the connection closed before the body ended

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.payloads if p != "[DONE]"]

    @property
    def content(self) -> str:
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in self.chunks if c["choices"])

    @property
    def content_chunks(self) -> list[str]:
        return [c["choices"][0]["delta"]["content"] for c in self.chunks if c["choices"] and c["choices"][0]["delta"]]


def stream(client: httpx.Client, body: dict[str, Any]) -> Stream:
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        result = Stream(response.status_code, response.headers)
        try:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    result.payloads.append(line.removeprefix("data: "))
                    result.arrivals.append(time.perf_counter())
        except httpx.RemoteProtocolError:
            result.cut = True
    return result


@pytest.fixture
def upstream():
    """A factory: ``upstream(**behaviour)`` gives (mock, client), both closed after the test."""
    opened: list[tuple[MockUpstream, httpx.Client]] = []

    def start(**behaviour: Any) -> tuple[MockUpstream, httpx.Client]:
        mock = MockUpstream(Behaviour(**behaviour)).__enter__()
        client = httpx.Client(base_url=mock.url, timeout=10)
        opened.append((mock, client))
        return mock, client

    yield start
    for mock, client in opened:
        client.close()
        mock.__exit__(None, None, None)


def test_buffered_completion_has_openai_shape_and_deterministic_answer(upstream):
    mock, client = upstream()
    response = client.post("/v1/chat/completions", json=chat("one two three", model="my-model"))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "my-model"
    assert body["id"].startswith("chatcmpl-")
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": FULL_ANSWER, "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 20, "total_tokens": 23}
    assert mock.stats()["counters"]["buffered"] == 1


def test_stream_has_openai_chunk_shape_and_ends_with_done(upstream):
    _, client = upstream()
    result = stream(client, chat())
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.payloads[-1] == "[DONE]"
    chunks = result.chunks
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert result.content_chunks[1:] == [f"tok{i} " for i in range(20)]
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert all("usage" not in c for c in chunks)
    assert result.content == FULL_ANSWER


def test_stream_sends_usage_chunk_when_asked(upstream):
    _, client = upstream(chunks=4)
    result = stream(client, chat("a b", stream_options={"include_usage": True}))
    *chunks, usage = result.chunks
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}
    assert all(c["usage"] is None for c in chunks)
    assert result.payloads[-1] == "[DONE]"


def test_chunk_count_and_text_are_configurable(upstream):
    _, client = upstream(chunks=3, chunk_text="w{i}|")
    assert stream(client, chat()).content == "w0|w1|w2|"
    assert client.post("/v1/chat/completions", json=chat()).json()["choices"][0]["message"]["content"] == "w0|w1|w2|"


def test_max_tokens_stops_the_answer_with_finish_reason_length(upstream):
    _, client = upstream()
    result = stream(client, chat(max_tokens=3))
    assert result.content == "tok0 tok1 tok2 "
    assert result.chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_models_and_health(upstream):
    _, client = upstream(models=("mock", "other"))
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["mock", "other"]
    assert client.get("/health").json() == {"status": "ok"}


@pytest.mark.parametrize(("status", "kind"), [(500, "server_error"), (503, "server_error"), (429, "rate_limit_error")])
def test_injected_error_has_status_openai_body_and_retry_after(upstream, status, kind):
    mock, client = upstream(error_rate=1.0, error_status=status, retry_after_s=2)
    for response in (
        client.post("/v1/chat/completions", json=chat()),
        client.post("/v1/chat/completions", json=chat(stream=True)),
    ):
        assert response.status_code == status
        assert response.headers["retry-after"] == "2"
        assert response.json()["error"]["type"] == kind
    assert mock.stats()["counters"]["errors"] == 2


def test_error_without_retry_after_sends_no_header(upstream):
    _, client = upstream(error_rate=1.0, error_status=503)
    assert "retry-after" not in client.post("/v1/chat/completions", json=chat()).headers


def test_error_rate_is_a_probability_and_the_seed_reproduces_the_draws(upstream):
    def statuses(seed: int) -> list[int]:
        _, client = upstream(error_rate=0.3, seed=seed)
        return [client.post("/v1/chat/completions", json=chat()).status_code for _ in range(300)]

    first, again, other = statuses(7), statuses(7), statuses(8)
    assert first == again
    assert first != other
    assert 60 <= first.count(500) <= 120  # 90 expected; binomial sd about 8


def test_fault_counters_match_what_the_client_saw(upstream):
    mock, client = upstream(error_rate=0.25, cut_rate=0.25, malformed_rate=0.25, seed=3)
    seen = {"errors": 0, "cuts": 0, "malformed": 0, "ok": 0}
    for _ in range(100):
        result = stream(client, chat())
        if result.status == 500:
            seen["errors"] += 1
        elif result.cut:
            seen["cuts"] += 1
        elif any(not p.startswith("{") or not p.endswith("}") for p in result.payloads if p != "[DONE]"):
            seen["malformed"] += 1
        else:
            seen["ok"] += 1
    counters = mock.stats()["counters"]
    assert {name: counters[name] for name in seen} == seen
    assert counters["completions"] == counters["streams"] == 100
    assert all(count > 10 for count in seen.values())


def test_hang_before_first_byte_outlasts_the_client_timeout(upstream):
    mock, client = upstream(hang_rate=1.0)
    began = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/chat/completions", json=chat(stream=True), timeout=httpx.Timeout(10, read=0.3))
    assert 0.3 <= time.perf_counter() - began < 2
    assert mock.stats()["counters"]["hangs"] == 1
    mock.configure(hang_rate=0.0)  # the mock keeps serving while hung requests wait
    assert client.post("/v1/chat/completions", json=chat()).status_code == 200


def test_hang_lasts_hang_s_then_closes_the_connection(upstream):
    _, client = upstream(hang_rate=1.0, hang_s=0.2)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/chat/completions", json=chat())


def test_first_byte_delay_and_chunk_delay(upstream):
    _, client = upstream(chunks=5, first_byte_delay_s=0.2, chunk_delay_s=0.05)
    began = time.perf_counter()
    result = stream(client, chat())
    assert result.arrivals[0] - began >= 0.2
    gaps = [b - a for a, b in zip(result.arrivals[1:5], result.arrivals[2:6], strict=True)]  # content chunks
    assert all(gap >= 0.04 for gap in gaps), gaps
    assert result.content == "tok0 tok1 tok2 tok3 tok4 "


def test_cut_closes_the_stream_after_n_chunks_without_done(upstream):
    mock, client = upstream(cut_rate=1.0, cut_after=3)
    result = stream(client, chat())
    assert result.status == 200
    assert result.cut
    assert "[DONE]" not in result.payloads
    assert result.content == "tok0 tok1 tok2 "
    assert mock.stats()["counters"]["cuts"] == 1


def test_cut_buffered_reply_stops_half_way(upstream):
    _, client = upstream(cut_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/chat/completions", json=chat())


def test_malformed_chunk_is_invalid_json_in_a_data_line(upstream):
    _, client = upstream(malformed_rate=1.0)
    result = stream(client, chat())
    assert result.payloads[-1] == "[DONE]"
    bad = []
    for payload in result.payloads[:-1]:
        try:
            json.loads(payload)
        except json.JSONDecodeError:
            bad.append(payload)
    assert len(bad) == 1
    assert bad[0].startswith('{"id":"chatcmpl-')
    buffered = client.post("/v1/chat/completions", json=chat())
    assert buffered.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(buffered.content)


def continuation(prefix: str, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": prefix}]
    return {"model": "mock", "messages": messages, "continue_final_message": True, **extra}


@pytest.mark.parametrize("prefix", ["", "tok0 tok1 tok2 ", "tok0 tok1 tok2", "tok0 to", FULL_ANSWER])
def test_continuation_sends_the_rest_of_the_answer(upstream, prefix):
    mock, client = upstream()
    result = stream(client, continuation(prefix))
    assert prefix + result.content == FULL_ANSWER
    assert result.payloads[-1] == "[DONE]"
    buffered = client.post("/v1/chat/completions", json=continuation(prefix)).json()
    assert prefix + buffered["choices"][0]["message"]["content"] == FULL_ANSWER
    assert mock.stats()["counters"]["continuations"] == 2


def test_continuation_after_a_cut_completes_the_answer(upstream):
    mock, client = upstream(cut_rate=1.0, cut_after=7)
    cut = stream(client, chat())
    assert cut.cut
    mock.configure(cut_rate=0.0)
    rest = stream(client, continuation(cut.content))
    assert rest.content_chunks[1:] == [f"tok{i} " for i in range(7, 20)]
    assert cut.content + rest.content == FULL_ANSWER


def test_continuation_counts_chunks_of_a_rewritten_prefix(upstream):
    _, client = upstream()
    result = stream(client, continuation("tok0  tok1\ntok2"))
    assert result.content.startswith("tok3 ")
    assert result.content.endswith("tok19 ")


def test_assistant_last_without_continue_flag_gets_the_whole_answer(upstream):
    _, client = upstream()
    body = continuation("tok0 tok1 ")
    del body["continue_final_message"]
    assert stream(client, body).content == FULL_ANSWER


def test_control_endpoint_changes_behaviour_while_running(upstream):
    mock, client = upstream()
    assert client.get("/_control").json()["chunks"] == 20
    changed = client.post("/_control", json={"chunks": 2, "chunk_text": "x{i} "})
    assert changed.status_code == 200
    assert changed.json()["chunks"] == 2
    assert stream(client, chat()).content == "x0 x1 "
    assert mock.stats()["behaviour"]["chunk_text"] == "x{i} "


@pytest.mark.parametrize(
    "change",
    [
        {"nope": 1},
        {"error_rate": 1.5},
        {"error_rate": 0.6, "hang_rate": 0.6},
        {"chunk_text": "{j}"},
        {"tag_pattern": "("},
        {"error_status": 200},
        [1],
    ],
)
def test_control_endpoint_rejects_bad_changes(upstream, change):
    _, client = upstream()
    response = client.post("/_control", json=change)
    assert response.status_code == 400
    assert "error" in response.json()
    assert client.get("/_control").json() == Behaviour().as_dict()


def test_stats_count_requests_and_reset(upstream):
    _, client = upstream(chunks=4)
    client.post("/v1/chat/completions", json=chat())
    stream(client, chat())
    client.get("/v1/models")
    counters = client.get("/_stats").json()["counters"]
    assert (counters["completions"], counters["streams"], counters["buffered"]) == (2, 1, 1)
    assert (counters["ok"], counters["chunks"], counters["models"]) == (2, 8, 1)
    client.post("/_control", json={"reset_stats": True})
    assert client.get("/_stats").json()["counters"]["completions"] == 0


def test_stats_record_the_outcomes_of_tagged_requests(upstream):
    mock, client = upstream(error_rate=1.0)
    client.post("/v1/chat/completions", json=chat("question [req:a1]"))
    mock.configure(error_rate=0.0)
    client.post("/v1/chat/completions", json=chat("question [req:a1]"))
    resumed = continuation("tok0 ")
    resumed["messages"][0]["content"] = "question [req:b2]"
    client.post("/v1/chat/completions", json=resumed)
    client.post("/v1/chat/completions", json=chat("untagged"))
    tags = client.get("/_stats", params={"tags": 1}).json()["tags"]
    assert tags == {"a1": ["error", "ok"], "b2": ["ok/continue"]}
    assert "tags" not in client.get("/_stats").json()


def test_bad_requests_and_unknown_paths_get_openai_errors(upstream):
    mock, client = upstream()
    bad = client.post("/v1/chat/completions", content=b"{not json")
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert client.post("/v1/chat/completions", json={"model": "mock"}).status_code == 400
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/chat/completions").status_code == 405
    assert mock.stats()["counters"]["bad_requests"] == 2


def test_client_leaving_mid_stream_is_counted_and_the_mock_keeps_serving(upstream):
    mock, client = upstream(chunks=50, chunk_delay_s=0.01)
    with client.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as response:
        next(response.iter_lines())
    client.close()
    deadline = time.monotonic() + 5
    while mock.stats()["counters"]["disconnects"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mock.stats()["counters"]["disconnects"] == 1
    with httpx.Client(base_url=mock.url) as fresh:
        assert fresh.post("/v1/chat/completions", json=chat()).status_code == 200


def test_spawned_subprocess_takes_behaviour_and_control():
    with spawn_mock(Behaviour(chunks=2)) as mock, httpx.Client(base_url=mock.url) as client:
        assert stream(client, chat()).content == "tok0 tok1 "
        mock.configure(error_rate=1.0, error_status=503)
        assert client.post("/v1/chat/completions", json=chat()).status_code == 503
        assert mock.stats()["counters"]["errors"] == 1
