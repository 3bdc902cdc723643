class FeedbackError(Exception):
    """Base error of the feedback package."""


class InvalidFeedbackError(FeedbackError, ValueError):
    """A rating, comment or request id the store does not accept; ``param`` names the field.

    A ``ValueError``, so a pydantic validator that raises it becomes a 400 naming the field.
    """

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.reason = message  # without the field's name, for messages that name it already


class FeedbackNotFoundError(FeedbackError, LookupError):
    """This tenant left no feedback on that request."""
