"""One base error for the model server and one subclass per condition.

Each carries its HTTP status; the serving modules render it in their wire shape
(OpenAI's error object for chat, TEI's for embeddings, SageMaker's for the runtime API).
"""

from __future__ import annotations

__all__ = (
    "BackendError",
    "ClientClosedRequestError",
    "ContextLengthExceededError",
    "InvalidRequestError",
    "ModelEndpointError",
    "ModelNotReadyError",
    "PayloadTooLargeError",
    "ServerDrainingError",
    "ServerOverloadedError",
    "ServiceUnavailableError",
)


class ModelEndpointError(Exception):
    """Base error; ``status_code`` and ``error_type`` say how to answer it.

    ``retry_after_s``, when set, is sent as ``Retry-After`` so clients back off instead of hammering.
    """

    status_code: int = 500
    error_type: str = "InternalServerError"

    def __init__(self, message: str, *, param: str | None = None, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)} if self.retry_after_s is not None else {}


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


class ServiceUnavailableError(ModelEndpointError):
    """The server cannot take the request now; retrying later may succeed."""

    status_code = 503
    error_type = "ServiceUnavailableError"


class ModelNotReadyError(ServiceUnavailableError):
    """The models are still loading (or failed to load)."""


class ServerOverloadedError(ServiceUnavailableError):
    """The generation queue is full: answered at once rather than piling up unbounded."""


class ServerDrainingError(ServiceUnavailableError):
    """The server is shutting down: requests in flight finish, new ones go elsewhere."""


class ClientClosedRequestError(ModelEndpointError):
    """The client left while its request waited for the model (nginx's 499); nobody reads the answer."""

    status_code = 499
    error_type = "ClientClosedRequest"


class BackendError(ModelEndpointError):
    """The model failed while running; not the caller's fault."""

    status_code = 500
    error_type = "InternalServerError"
