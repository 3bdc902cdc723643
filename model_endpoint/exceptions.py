"""One base error for the model server and one subclass per condition.

Each carries its HTTP status; the serving modules render it in their wire shape
(OpenAI's error object for chat, TEI's for embeddings, SageMaker's for the runtime API).
"""

from __future__ import annotations

__all__ = (
    "BackendError",
    "ContextLengthExceededError",
    "InvalidRequestError",
    "ModelEndpointError",
    "ModelNotReadyError",
    "PayloadTooLargeError",
)


class ModelEndpointError(Exception):
    """Base error; ``status_code`` and ``error_type`` say how to answer it."""

    status_code: int = 500
    error_type: str = "InternalServerError"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequestError(ModelEndpointError):
    """The request is malformed or asks for something the model cannot do."""

    status_code = 400
    error_type = "BadRequestError"


class ContextLengthExceededError(InvalidRequestError):
    """The prompt does not fit the model's context window."""


class PayloadTooLargeError(ModelEndpointError):
    """Too many inputs, or an input too long while truncation is off (TEI answers 413)."""

    status_code = 413
    error_type = "PayloadTooLargeError"


class ModelNotReadyError(ModelEndpointError):
    """The models are still loading (or failed to load)."""

    status_code = 503
    error_type = "ServiceUnavailableError"


class BackendError(ModelEndpointError):
    """The model failed while running; not the caller's fault."""

    status_code = 500
    error_type = "InternalServerError"
