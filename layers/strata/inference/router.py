"""The inference router: alias → target, timeouts, retries, breakers, fallbacks, continuation.

Resilience lives here once, for every provider (botocore's own retries are off for model calls):
- a target whose breaker is open is skipped;
- a call that fails **before its first text** is retried with exponential backoff and full jitter,
  honouring ``Retry-After``, then the next target of the fallback chain is tried;
- a stream that breaks **after** text reached the caller is never retried: the next target
  continues it, with the partial answer as an assistant prefix, so the caller sees one answer;
- a target that is scaled to zero and waking is not a failure: no breaker counts it and no retry
  waits for it; the next target serves, or the call ends in ``ModelWakingError``;
- when no target can serve, ``AllTargetsUnavailableError`` (with ``retry_after``); when none can
  continue a broken stream, ``StreamInterruptedError`` — never a silently shortened answer.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from strata.inference.base import ChatProvider
from strata.inference.breaker import CircuitBreakers
from strata.inference.exceptions import (
    AllTargetsUnavailableError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
    ModelWakingError,
    StreamInterruptedError,
)
from strata.inference.registry import ModelRegistry
from strata.inference.types import ChatEvent, ChatRequest, Completion, Finish, FinishReason, TextDelta, Usage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 2  # per target, before moving down the fallback chain
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0
    # A Retry-After longer than this sends the call to the next target instead of waiting.
    max_retry_after_s: float = 5.0


@dataclass(slots=True)
class RouteOutcome:
    """What happened to one call, for the response's ``strata`` fields and the request log."""

    target: str | None = None  # the alias that finished the answer
    attempts: int = 0
    failovers: int = 0  # moves to another target, mid-stream continuations included
    continued: bool = False
    errors: list[str] = field(default_factory=list)
    waking: ModelWakingError | None = None  # a target of the chain that is starting from zero


class InferenceRouter:
    def __init__(
        self,
        registry: ModelRegistry,
        providers: Mapping[str, ChatProvider],
        breakers: CircuitBreakers,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.registry = registry
        self._providers = providers
        self.breakers = breakers
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter

    def stream(self, alias: str, request: ChatRequest, outcome: RouteOutcome | None = None) -> Iterator[ChatEvent]:
        outcome = outcome if outcome is not None else RouteOutcome()
        sent = ""  # text already handed to the caller
        prompt_tokens: int | None = None
        completion_tokens = 0
        for target in self._targets(alias, outcome):
            for attempt in range(self._retry.attempts):
                outcome.attempts += 1
                call = request.continued(request.prefix + sent) if sent else request
                finish: FinishReason | None = None
                usage: Usage | None = None
                deadline = self._clock() + self.registry.target(target).timeouts.total_s
                events = self._providers[target].stream(call)
                try:
                    for event in events:
                        if isinstance(event, TextDelta):
                            sent += event.text
                            yield event
                        elif isinstance(event, Usage):
                            usage = event
                        else:
                            finish = event.reason
                        if self._clock() > deadline:
                            raise ModelTimeoutError(f"target {target!r} exceeded its total timeout", target=target)
                    if finish is None:
                        raise ModelUnavailableError(f"target {target!r} ended without a finish reason", target=target)
                except ModelRequestError:
                    if not sent:
                        raise  # the caller's error: no retry, no breaker
                    outcome.errors.append(f"{target}: refused the continuation")
                    break
                except ModelUnavailableError as error:
                    self._record_failure(target, error, outcome)
                    logger.warning("model call to %s failed (attempt %d): %s", target, attempt + 1, error)
                    if sent:
                        outcome.continued = True
                        break  # text has reached the caller: continue on the next target, never retry
                    if self._may_retry(alias, target, attempt, error):
                        continue
                    break
                finally:
                    events_close = getattr(events, "close", None)
                    if events_close is not None:
                        events_close()
                self.breakers.record_success(target)
                if usage is not None:
                    prompt_tokens = usage.prompt_tokens if prompt_tokens is None else prompt_tokens
                    completion_tokens += usage.completion_tokens
                outcome.target = target
                if prompt_tokens is not None:
                    yield Usage(prompt_tokens, completion_tokens)
                yield Finish(finish)
                return
        if sent:
            raise StreamInterruptedError(
                f"the answer from {alias!r} broke off and no target could continue it", target=alias
            )
        raise self._all_down(alias, outcome)

    def complete(self, alias: str, request: ChatRequest, outcome: RouteOutcome | None = None) -> Completion:
        outcome = outcome if outcome is not None else RouteOutcome()
        for target in self._targets(alias, outcome):
            for attempt in range(self._retry.attempts):
                outcome.attempts += 1
                try:
                    completion = self._providers[target].complete(request)
                except ModelUnavailableError as error:
                    self._record_failure(target, error, outcome)
                    if self._may_retry(alias, target, attempt, error):
                        continue
                    break
                self.breakers.record_success(target)
                outcome.target = target
                return completion
        raise self._all_down(alias, outcome)

    def _targets(self, alias: str, outcome: RouteOutcome) -> Iterator[str]:
        """The alias's chain, less the targets whose breaker is open; counts the moves down it."""
        for target in self.registry.chain(alias):
            if not self.breakers.allow(target):
                outcome.errors.append(f"{target}: circuit open")
                continue
            if outcome.attempts:
                outcome.failovers += 1
            yield target

    def _record_failure(self, target: str, error: ModelUnavailableError, outcome: RouteOutcome) -> None:
        outcome.errors.append(f"{target}: {error}")
        if isinstance(error, ModelWakingError):
            outcome.waking = outcome.waking or error  # starting, not broken: the breaker stays closed
        else:
            self.breakers.record_failure(target, error)

    def _all_down(self, alias: str, outcome: RouteOutcome) -> ModelUnavailableError:
        if outcome.waking is not None:
            return ModelWakingError(
                f"the model behind {alias!r} is starting (it was scaled to zero while idle); retry shortly",
                target=alias,
                retry_after=outcome.waking.retry_after or 60.0,
            )
        waits = [self.breakers.retry_after(target) for target in self.registry.chain(alias)]
        return AllTargetsUnavailableError(
            f"every target of {alias!r} is unavailable", target=alias, retry_after=max(1.0, min(waits))
        )

    def _may_retry(self, alias: str, target: str, attempt: int, error: ModelUnavailableError) -> bool:
        """Wait before another attempt at ``target``; ``False``: move on down the chain instead."""
        if attempt + 1 >= self._retry.attempts:
            return False
        if isinstance(error, ModelTimeoutError) and self.registry.chain(alias)[-1] != target:
            return False  # a target that hung once will likely hang again: a fallback is quicker
        if error.retry_after is not None and error.retry_after > self._retry.max_retry_after_s:
            return False
        delay = self._jitter(0.0, min(self._retry.max_delay_s, self._retry.base_delay_s * 2**attempt))
        self._sleep(max(delay, error.retry_after or 0.0))
        return self.breakers.allow(target)  # this failure may have opened it
