"""One base error for inference and one subclass per condition; each names the target that failed."""

from __future__ import annotations


class InferenceError(Exception):
    """Base error of the inference package: a model target failed or answered nonsense."""

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class ModelUnavailableError(InferenceError):
    """The target could not be reached, timed out, throttled or broke its stream: worth another try."""

    def __init__(self, message: str, *, target: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, target=target)
        self.retry_after = retry_after


class ModelTimeoutError(ModelUnavailableError):
    """No first byte (or no end) within the target's timeout."""


class ModelWakingError(ModelUnavailableError):
    """The target is scaled to zero and is starting (minutes): not broken, so no breaker trips and
    no retry waits for it; the caller is told to come back after ``retry_after``."""

    def __init__(self, message: str, *, target: str | None = None, retry_after: float = 60.0) -> None:
        super().__init__(message, target=target, retry_after=retry_after)


class ModelRequestError(InferenceError):
    """The target refused the request as invalid (too long a prompt, a bad parameter): the caller's error."""


class AllTargetsUnavailableError(ModelUnavailableError):
    """Every target of the alias (the fallbacks included) is open or failed before the first byte."""


class StreamInterruptedError(ModelUnavailableError):
    """A stream broke after text reached the client and no target could continue it."""


class UnknownModelError(InferenceError, LookupError):
    """The requested model alias is not in the registry."""


class ModelRegistryError(ValueError):
    """The model registry (a YAML file or the settings) is invalid; the message names the field."""
