"""The SageMaker provider: SSE lines split anywhere across payload parts decode to the same events."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from strata.inference import ChatRequest, Finish, Message, SageMakerChatProvider, TextDelta, Usage
from tests.fakes import FakeSageMakerRuntime

REQUEST = ChatRequest(messages=(Message("user", "hi"),), max_tokens=20)

TEXTS = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8)


def stream_bytes(texts: list[str]) -> bytes:
    lines = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    lines += [{"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]} for t in texts]
    lines.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    lines.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": len(texts)}})
    body = "".join(f"data: {json.dumps(line, ensure_ascii=False)}\n\n" for line in lines) + "data: [DONE]\n\n"
    return body.encode()


@given(texts=TEXTS, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_events_are_the_same_however_the_payload_parts_split_the_lines(texts: list[str], cuts: list[int]) -> None:
    data = stream_bytes(texts)
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    parts = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]
    runtime = FakeSageMakerRuntime(parts)

    events = list(SageMakerChatProvider("default", client=runtime, endpoint="strata-chat").stream(REQUEST))

    assert events == [*(TextDelta(t) for t in texts), Finish("length"), Usage(3, len(texts))]
    assert runtime.streams[0].closed


def test_an_inference_component_is_named_in_the_call() -> None:
    runtime = FakeSageMakerRuntime([stream_bytes(["a"])])
    provider = SageMakerChatProvider("default", client=runtime, endpoint="e", inference_component="chat-ic")
    list(provider.stream(REQUEST))
    assert runtime.calls[0]["InferenceComponentName"] == "chat-ic"
    assert runtime.calls[0]["EndpointName"] == "e"
    assert json.loads(runtime.calls[0]["Body"])["stream_options"] == {"include_usage": True}


def test_a_connection_dropped_mid_stream_is_model_unavailable_naming_the_endpoint() -> None:
    import pytest
    from urllib3.exceptions import ProtocolError

    from strata.inference import ModelUnavailableError
    from tests.fakes import FakeEventStream

    class Dropping(FakeEventStream):
        def __iter__(self):
            yield from super().__iter__()
            raise ProtocolError("Connection broken: IncompleteRead")

    runtime = FakeSageMakerRuntime()
    runtime.invoke_endpoint_with_response_stream = lambda **_: {"Body": Dropping([stream_bytes(["a"])[:60]])}
    provider = SageMakerChatProvider("default", client=runtime, endpoint="strata-chat")
    with pytest.raises(ModelUnavailableError, match="'strata-chat' stream broke") as raised:
        list(provider.stream(REQUEST))
    assert raised.value.target == "default"


NO_CAPACITY = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress "
    "(if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API."
)


def _validation_error(message: str):
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": "ValidationError", "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        "InvokeEndpointWithResponseStream",
    )


def test_a_component_scaled_to_zero_is_waking_not_the_callers_error() -> None:
    import pytest

    from strata.inference import ModelRequestError, ModelWakingError

    runtime = FakeSageMakerRuntime()

    def refuse(**_):
        raise _validation_error(NO_CAPACITY)

    runtime.invoke_endpoint_with_response_stream = refuse
    runtime.invoke_endpoint = refuse
    provider = SageMakerChatProvider("default", client=runtime, endpoint="e", inference_component="e-model")
    with pytest.raises(ModelWakingError) as raised:
        list(provider.stream(REQUEST))
    assert raised.value.retry_after and raised.value.retry_after >= 30
    with pytest.raises(ModelWakingError):
        provider.complete(REQUEST)

    def invalid(**_):
        raise _validation_error("Endpoint e of account 1 not found.")

    runtime.invoke_endpoint_with_response_stream = invalid
    with pytest.raises(ModelRequestError):
        list(provider.stream(REQUEST))
