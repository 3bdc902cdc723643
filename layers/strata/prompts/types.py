"""Stored prompt templates: names, versions, and the errors of the prompt store.

(The errors live here, not in an ``exceptions`` module, only to keep this package's new surface
to the two modules the store needs.)
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_TEMPLATE_BYTES = 32 * 1024
MAX_DESCRIPTION_CHARS = 1000
VERSION_DIGITS = 6  # sort keys name#000007: "latest" is the last key of the name's range
MAX_VERSION = 10**VERSION_DIGITS - 1


class PromptsError(Exception):
    """Base error of the prompt store."""


class InvalidPromptError(PromptsError, ValueError):
    """A name, template or description the store does not accept; ``param`` names the field.

    A ``ValueError``, so a pydantic validator that raises it becomes a 400 naming the field.
    """

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.reason = message  # without the field's name, for messages that name it already


class PromptNotFoundError(PromptsError, LookupError):
    """No prompt (or no such version of it) for this tenant."""


class PromptConflictError(PromptsError):
    """A new version could not be written: other writers kept taking the next number."""


def validate_prompt_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidPromptError(
            f"{name[:80]!r} is not a prompt name: use 1-64 lowercase letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            param="name",
        )
    return name


def validate_template(template: str) -> str:
    if not template.strip():
        raise InvalidPromptError("must not be empty", param="template")
    size = len(template.encode())
    if size > MAX_TEMPLATE_BYTES:
        raise InvalidPromptError(
            f"is {size} bytes; at most {MAX_TEMPLATE_BYTES} (32 KiB) are allowed", param="template"
        )
    return template


def validate_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidPromptError(
            f"is {len(description)} characters; at most {MAX_DESCRIPTION_CHARS} are allowed", param="description"
        )
    return description


def sort_key(name: str, version: int) -> str:
    return f"{name}#{version:0{VERSION_DIGITS}d}"


def name_prefix(name: str) -> str:
    # '#' cannot occur in a name, so the prefix of "a" never matches the versions of "a.b".
    return f"{name}#"


class PromptVersion(BaseModel):
    """One immutable version of a tenant's named prompt template."""

    model_config = ConfigDict(frozen=True)

    object: Literal["prompt"] = "prompt"
    tenant: str
    name: str
    version: int
    template: str
    description: str = ""
    created_at: datetime
    created_by: str | None = None  # the key id that wrote it, when known
