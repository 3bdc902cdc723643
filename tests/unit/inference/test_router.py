"""The router over scripted providers: retries only before the first text, breakers, fallbacks, continuation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strata.inference import (
    AllTargetsUnavailableError,
    ChatProvider,
    ChatRequest,
    CircuitBreakers,
    Completion,
    Finish,
    InferenceRouter,
    InMemoryBreakerStore,
    Message,
    ModelRequestError,
    ModelUnavailableError,
    ModelWakingError,
    RetryPolicy,
    RouteOutcome,
    StreamInterruptedError,
    TextDelta,
    Usage,
    parse_registry,
)
from strata.inference.breaker import BreakerPolicy

ANSWER = ["Kangaroos ", "eat ", "grass."]


class ScriptedProvider(ChatProvider):
    """Each call takes the next script: "ok", "fail" (before any text), "cut:N" (after N pieces),
    "refuse", "waking" (scaled to zero and starting)."""

    def __init__(self, name: str, scripts: list[str]) -> None:
        super().__init__(name)
        self.scripts = scripts
        self.requests: list[ChatRequest] = []
        self.closed = 0

    def _script(self, request: ChatRequest) -> str:
        self.requests.append(request)
        return self.scripts.pop(0) if self.scripts else "ok"

    def stream(self, request: ChatRequest) -> Iterator:
        script = self._script(request)
        try:
            if script == "fail":
                raise ModelUnavailableError("503 from upstream", target=self.name, retry_after=None)
            if script == "waking":
                raise ModelWakingError("no capacity", target=self.name, retry_after=60)
            if script == "refuse":
                raise ModelRequestError("bad parameter", target=self.name)
            pieces = ANSWER[len(request.prefix.split(" ")) - 1 :] if request.prefix else ANSWER
            cut = int(script.split(":")[1]) if script.startswith("cut:") else None
            for index, piece in enumerate(pieces):
                if cut is not None and index == cut:
                    raise ModelUnavailableError("connection dropped", target=self.name)
                yield TextDelta(piece)
            yield Usage(10, len(pieces))
            yield Finish("stop")
        finally:
            self.closed += 1

    def complete(self, request: ChatRequest) -> Completion:
        script = self._script(request)
        if script == "fail":
            raise ModelUnavailableError("503", target=self.name)
        if script == "waking":
            raise ModelWakingError("no capacity", target=self.name, retry_after=60)
        return Completion("".join(ANSWER), "stop", Usage(10, 3), self.name)


REQUEST = ChatRequest(messages=(Message("user", "What do kangaroos eat?"),), max_tokens=50)


def router(scripts: dict[str, list[str]], *, fallbacks: bool = True, attempts: int = 2, store=None, clock=None):
    registry = parse_registry(
        {
            "models": {
                "default": {
                    "provider": "openai",
                    "base_url": "http://a/v1",
                    "model": "m",
                    "fallbacks": ["backup"] if fallbacks else [],
                },
                "backup": {"provider": "openai", "base_url": "http://b/v1", "model": "m"},
            }
        },
        source="test",
    )
    providers = {alias: ScriptedProvider(alias, list(scripts.get(alias, []))) for alias in registry.models}
    sleeps: list[float] = []
    breakers = CircuitBreakers(
        store or InMemoryBreakerStore(), BreakerPolicy(min_calls=3, cooldown_s=30), clock=clock or (lambda: 0)
    )
    routed = InferenceRouter(
        registry,
        providers,
        breakers,
        retry=RetryPolicy(attempts=attempts),
        sleep=sleeps.append,
        jitter=lambda low, high: high,
    )
    return routed, providers, sleeps


def text_of(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_a_failure_before_the_first_text_is_retried_with_backoff_on_the_same_target() -> None:
    routed, providers, sleeps = router({"default": ["fail"]})
    outcome = RouteOutcome()
    events = list(routed.stream("default", REQUEST, outcome))
    assert text_of(events) == "Kangaroos eat grass."
    assert events[-1] == Finish("stop")
    assert len(providers["default"].requests) == 2 and not providers["backup"].requests
    assert sleeps == [0.1]  # full jitter up to base * 2**0 (the jitter here returns its maximum)
    assert outcome.target == "default" and outcome.attempts == 2


def test_retries_exhausted_fall_back_to_the_next_target() -> None:
    routed, providers, _ = router({"default": ["fail", "fail"]})
    outcome = RouteOutcome()
    assert text_of(list(routed.stream("default", REQUEST, outcome))) == "Kangaroos eat grass."
    assert outcome.target == "backup" and outcome.failovers == 1


def test_a_stream_cut_after_text_is_never_retried_but_continued_on_the_next_target() -> None:
    routed, providers, sleeps = router({"default": ["cut:2"]})
    outcome = RouteOutcome()
    events = list(routed.stream("default", REQUEST, outcome))

    assert text_of(events) == "Kangaroos eat grass."  # one seamless answer, nothing repeated
    assert len(providers["default"].requests) == 1  # no retry after the first byte
    assert providers["backup"].requests[0].prefix == "Kangaroos eat "
    assert outcome.continued and outcome.target == "backup"
    assert sleeps == []
    assert providers["default"].closed == 1  # the broken upstream stream was closed


def test_a_cut_that_no_target_can_continue_is_an_explicit_interruption() -> None:
    routed, _, _ = router({"default": ["cut:1"]}, fallbacks=False)
    events = []
    with pytest.raises(StreamInterruptedError):
        for event in routed.stream("default", REQUEST):
            events.append(event)
    assert text_of(events) == "Kangaroos "
    assert not any(isinstance(e, Finish) for e in events)  # never a finish after a cut


def test_every_target_down_is_all_targets_unavailable_with_retry_after() -> None:
    routed, _, _ = router({"default": ["fail", "fail"], "backup": ["fail", "fail"]})
    with pytest.raises(AllTargetsUnavailableError) as raised:
        list(routed.stream("default", REQUEST))
    assert raised.value.retry_after is not None and raised.value.retry_after >= 1


def test_a_waking_target_without_a_fallback_ends_in_waking_with_its_retry_after_and_no_breaker_count() -> None:
    store = InMemoryBreakerStore()
    routed, providers, sleeps = router({"default": ["waking"] * 4}, fallbacks=False, store=store)
    for _ in range(4):  # more calls than the breaker's min_calls: it must stay closed
        with pytest.raises(ModelWakingError) as raised:
            list(routed.stream("default", REQUEST))
        assert raised.value.retry_after == 60 and raised.value.target == "default"
    assert len(providers["default"].requests) == 4  # one call each: no retry waits for a wake
    assert sleeps == []
    assert routed.breakers.allow("default")
    assert text_of(list(routed.stream("default", REQUEST))) == "Kangaroos eat grass."  # awake again


def test_a_waking_target_falls_back_to_the_next_one() -> None:
    routed, providers, _ = router({"default": ["waking"]})
    outcome = RouteOutcome()
    assert routed.complete("default", REQUEST, outcome).text == "Kangaroos eat grass."
    assert outcome.target == "backup" and outcome.waking is not None


def test_a_refused_request_is_the_callers_error_and_is_neither_retried_nor_failed_over() -> None:
    routed, providers, _ = router({"default": ["refuse"]})
    with pytest.raises(ModelRequestError):
        list(routed.stream("default", REQUEST))
    assert len(providers["default"].requests) == 1 and not providers["backup"].requests
    assert routed.breakers.state("default").failures == 0


def test_an_open_breaker_skips_its_target_without_calling_it() -> None:
    routed, providers, _ = router({"default": ["fail"] * 3}, attempts=1)
    for _ in range(3):
        list(routed.stream("default", REQUEST))  # each fails over to backup
    calls = len(providers["default"].requests)
    outcome = RouteOutcome()
    list(routed.stream("default", REQUEST, outcome))
    assert len(providers["default"].requests) == calls == 3
    assert outcome.target == "backup" and "default: circuit open" in outcome.errors


def test_a_long_retry_after_moves_on_instead_of_waiting() -> None:
    routed, providers, sleeps = router({})

    def throttled(request: ChatRequest) -> Iterator:
        providers["default"].requests.append(request)
        raise ModelUnavailableError("429", target="default", retry_after=60)
        yield  # pragma: no cover

    providers["default"].stream = throttled  # type: ignore[method-assign]
    outcome = RouteOutcome()
    list(routed.stream("default", REQUEST, outcome))
    assert sleeps == [] and outcome.target == "backup" and len(providers["default"].requests) == 1


def test_a_short_retry_after_is_honoured() -> None:
    routed, providers, sleeps = router({})
    calls = {"n": 0}
    original = providers["default"].stream

    def throttled_once(request: ChatRequest) -> Iterator:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ModelUnavailableError("429", target="default", retry_after=1.5)
        yield from original(request)

    providers["default"].stream = throttled_once  # type: ignore[method-assign]
    list(routed.stream("default", REQUEST))
    assert sleeps == [1.5]


def test_usage_adds_the_completion_tokens_of_a_continuation() -> None:
    routed, _, _ = router({"default": ["cut:2"]})
    usage = [e for e in routed.stream("default", REQUEST) if isinstance(e, Usage)]
    assert usage == [Usage(10, 1)]  # the backup's own count of what it added (one piece)


def test_complete_falls_back_too() -> None:
    routed, _, _ = router({"default": ["fail", "fail"]})
    outcome = RouteOutcome()
    assert routed.complete("default", REQUEST, outcome).text == "Kangaroos eat grass."
    assert outcome.target == "backup"
