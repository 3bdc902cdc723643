class DocumentsError(Exception):
    """Base error of the documents package."""


class InvalidSourceKeyError(DocumentsError, ValueError):
    """An object key that does not follow ``tenants/{tenant}/{path}``."""


class DocumentNotFoundError(DocumentsError, LookupError):
    """No such document for this tenant."""


class InvalidUploadError(DocumentsError, ValueError):
    """An upload request that cannot be granted; ``param`` names the field that is wrong.

    A ``ValueError``, so a pydantic validator that raises it becomes a 400 naming the field.
    """

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.reason = message  # without the field's name, for messages that name it already
