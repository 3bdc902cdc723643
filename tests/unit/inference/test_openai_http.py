"""The OpenAI-compatible provider against a transport that answers like an upstream would."""

from __future__ import annotations

import json

import httpx
import pytest

from strata.inference import (
    ChatRequest,
    Finish,
    Message,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
    TextDelta,
    Usage,
)
from strata.inference.openai_http import OpenAIChatProvider

REQUEST = ChatRequest(messages=(Message("user", "hi"),), max_tokens=20, temperature=0)


def sse(*payloads: str) -> bytes:
    return b"".join(f"data: {p}\n\n".encode() for p in payloads)


def chunk(text: str | None = None, finish: str | None = None) -> str:
    delta = {"content": text} if text is not None else {}
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def provider(handler, **kwargs) -> tuple[OpenAIChatProvider, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.Client(base_url="http://upstream/v1/", transport=httpx.MockTransport(record))
    return OpenAIChatProvider("default", client=client, model="mock", **kwargs), seen


def test_stream_yields_typed_events_and_asks_for_usage() -> None:
    body = sse(
        chunk(""),
        chunk("Hel"),
        chunk("lo"),
        chunk(finish="stop"),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}),
        "[DONE]",
    )
    chat, seen = provider(lambda r: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}))
    events = list(chat.stream(REQUEST))
    assert events == [TextDelta("Hel"), TextDelta("lo"), Finish("stop"), Usage(5, 2)]
    sent = json.loads(seen[0].content)
    assert sent["model"] == "mock" and sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["temperature"] == 0 and sent["max_tokens"] == 20
    assert seen[0].url.path == "/v1/chat/completions"


def test_a_continuation_sends_the_partial_answer_as_the_final_assistant_message() -> None:
    chat, seen = provider(lambda r: httpx.Response(200, content=sse(chunk("!", "stop"), "[DONE]")))
    list(chat.stream(REQUEST.continued("Hello")))
    sent = json.loads(seen[0].content)
    assert sent["messages"][-1] == {"role": "assistant", "content": "Hello"}
    assert sent["continue_final_message"] is True and sent["add_generation_prompt"] is False


def test_a_stream_that_ends_without_done_is_a_break_not_an_answer() -> None:
    chat, _ = provider(lambda r: httpx.Response(200, content=sse(chunk("Hel"))))
    with pytest.raises(ModelUnavailableError, match="ended its stream early"):
        list(chat.stream(REQUEST))


def test_a_malformed_chunk_is_unavailable() -> None:
    chat, _ = provider(lambda r: httpx.Response(200, content=b"data: {not json\n\n"))
    with pytest.raises(ModelUnavailableError, match="malformed"):
        list(chat.stream(REQUEST))


def test_an_error_status_is_classified_with_retry_after() -> None:
    error = {"error": {"message": "overloaded"}}
    chat, _ = provider(lambda r: httpx.Response(503, json=error, headers={"Retry-After": "2"}))
    with pytest.raises(ModelUnavailableError) as raised:
        list(chat.stream(REQUEST))
    assert raised.value.retry_after == 2 and raised.value.target == "default"
    assert "overloaded" in str(raised.value)


def test_a_client_error_status_is_a_request_error() -> None:
    chat, _ = provider(lambda r: httpx.Response(400, json={"error": {"message": "max_tokens too large"}}))
    with pytest.raises(ModelRequestError, match="max_tokens too large"):
        chat.complete(REQUEST)


def test_a_timeout_is_a_timeout() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no first byte", request=request)

    chat, _ = provider(hang)
    with pytest.raises(ModelTimeoutError):
        list(chat.stream(REQUEST))


def test_the_api_key_comes_from_the_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_KEY", "sk-upstream")
    reply = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1}}
    chat, seen = provider(lambda r: httpx.Response(200, json=reply), api_key_env="UPSTREAM_KEY")
    assert chat.complete(REQUEST).text == "hi"
    assert seen[0].headers["authorization"] == "Bearer sk-upstream"


def test_a_missing_api_key_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSTREAM_KEY", raising=False)
    with pytest.raises(ModelUnavailableError, match="UPSTREAM_KEY is not set"):
        provider(lambda r: httpx.Response(200), api_key_env="UPSTREAM_KEY")


def test_a_buffered_call_waits_up_to_the_total_timeout_not_the_first_byte_one() -> None:
    seen: list[dict] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        if json.loads(request.content)["stream"]:
            return httpx.Response(200, content=sse(chunk("a", "stop"), "[DONE]"))
        return httpx.Response(200, json={"choices": [{"message": {"content": "a"}, "finish_reason": "stop"}]})

    client = httpx.Client(
        base_url="http://upstream/v1/", transport=httpx.MockTransport(record), timeout=httpx.Timeout(3, read=30)
    )
    chat = OpenAIChatProvider("default", client=client, model="mock", buffered_timeout_s=300)
    chat.complete(REQUEST)
    list(chat.stream(REQUEST))
    assert seen[0]["read"] == 300 and seen[0]["connect"] == 3
    assert seen[1]["read"] == 30


def test_an_upstream_error_page_is_never_echoed_to_the_caller() -> None:
    import httpx

    from strata.inference.openai_http import _error_message

    page = httpx.Response(502, text="<html><body>Traceback: secret internals at /srv/app.py</body></html>")
    assert _error_message(page) == "Bad Gateway"
    shaped = httpx.Response(
        400, json={"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}}
    )
    assert _error_message(shaped) == "max_tokens is too large"
    assert _error_message(httpx.Response(500, json=["not", "an", "error"])) == "Internal Server Error"
