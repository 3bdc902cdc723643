class InferenceError(Exception):
    """Base error of the inference package: the model endpoint failed or answered nonsense."""


class ModelUnavailableError(InferenceError):
    """The endpoint could not be reached or refused the call."""


class ModelRequestError(InferenceError):
    """The endpoint refused the request as invalid (too long a prompt, a bad parameter)."""


class UnknownModelError(InferenceError, LookupError):
    """The requested model alias is not in the registry."""
