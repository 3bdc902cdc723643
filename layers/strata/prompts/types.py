"""Stored prompt templates: names, versions, variables, labels, and the errors of the prompt store.

(The errors live here, not in an ``exceptions`` module, only to keep this package's new surface
to the modules the store needs.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

# '@' and '#' can never be part of a name: the sort keys name#version and name@label rely on it.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
LABEL_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
VARIABLE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_TEMPLATE_BYTES = 32 * 1024
MAX_DESCRIPTION_CHARS = 1000
MAX_VARIABLES = 64
MAX_VARIABLE_DESCRIPTION_CHARS = 500
MAX_VARIABLE_VALUE_BYTES = 8 * 1024  # a passed value, and a declared default
MAX_LABELS = 16  # set in one create call
VERSION_DIGITS = 6  # sort keys name#000007: "latest" is the last key of the name's range
MAX_VERSION = 10**VERSION_DIGITS - 1
PRODUCTION_LABEL = "production"  # what a request naming neither a version nor a label gets
DEFAULT_PROMPT_NAME = "default"  # the tenant's prompt for requests naming no prompt at all


class PromptsError(Exception):
    """Base error of the prompt store."""


class InvalidPromptError(PromptsError, ValueError):
    """A name, template, variable, label or description the store does not accept; ``param`` names
    the field.

    A ``ValueError``, so a pydantic validator that raises it becomes a 400 naming the field.
    """

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.reason = message  # without the field's name, for messages that name it already


class PromptNotFoundError(PromptsError, LookupError):
    """No prompt (or no such version or label of it) for this tenant."""


class PromptConflictError(PromptsError):
    """A new version could not be written: other writers kept taking the next number."""


class PromptVariableError(PromptsError, ValueError):
    """The variables passed to render a prompt do not fit the ones its version declares.

    ``variable`` is the variable at fault; ``param`` where it sits in a chat request
    (``strata.prompt.variables.<name>``).
    """

    def __init__(self, message: str, *, variable: str) -> None:
        super().__init__(message)
        self.variable = variable
        self.param = f"strata.prompt.variables.{variable}"


class PromptRenderError(PromptsError):
    """A stored template failed while rendering (a runtime error in the template itself)."""

    param = "strata.prompt"


class PromptSecurityError(PromptRenderError):
    """The template tried something the sandbox forbids (internals, unsafe calls, huge values)."""


def validate_prompt_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidPromptError(
            f"{name[:80]!r} is not a prompt name: use 1-64 lowercase letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            param="name",
        )
    return name


def validate_label(label: str, *, param: str = "label") -> str:
    if not LABEL_PATTERN.fullmatch(label):
        raise InvalidPromptError(
            f"{label[:80]!r} is not a label: use 1-32 lowercase letters, digits, '_' or '-', starting with a letter",
            param=param,
        )
    return label


def validate_labels(labels: Iterable[str]) -> list[str]:
    """Distinct, valid labels, sorted."""
    unique = sorted({validate_label(label, param="labels") for label in labels})
    if len(unique) > MAX_LABELS:
        raise InvalidPromptError(f"{len(unique)} labels; at most {MAX_LABELS} can be set at once", param="labels")
    return unique


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


def validate_variable_name(name: str) -> str:
    if not VARIABLE_PATTERN.fullmatch(name):
        raise InvalidPromptError(
            f"{name[:80]!r} is not a variable name: use 1-64 letters, digits or '_', not starting with a digit",
            param="variables",
        )
    return name


def validate_variable_description(description: str) -> str:
    if len(description) > MAX_VARIABLE_DESCRIPTION_CHARS:
        raise InvalidPromptError(
            f"a variable's description is {len(description)} characters; "
            f"at most {MAX_VARIABLE_DESCRIPTION_CHARS} are allowed",
            param="variables",
        )
    return description


def variable_value_too_long(value: str) -> int | None:
    """The value's size in bytes when it is over ``MAX_VARIABLE_VALUE_BYTES``, else None."""
    if len(value) * 4 <= MAX_VARIABLE_VALUE_BYTES:  # UTF-8 needs at most 4 bytes a character
        return None
    size = len(value.encode())
    return size if size > MAX_VARIABLE_VALUE_BYTES else None


def validate_variable_default(default: str | None) -> str | None:
    if default is not None and (size := variable_value_too_long(default)) is not None:
        raise InvalidPromptError(
            f"a variable's default is {size} bytes; at most {MAX_VARIABLE_VALUE_BYTES} (8 KiB) are allowed",
            param="variables",
        )
    return default


class PromptVariable(BaseModel):
    """A variable a prompt version declares. A default makes it optional; an optional variable
    without a default renders as the empty string when it is not passed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    required: bool = True
    default: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _a_default_is_not_required(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("default") is not None:
            if data.get("required") is True:
                raise ValueError("a variable with a default is not required: leave out 'required' or the default")
            return {**data, "required": False}
        return data


def validate_variables(variables: Sequence[PromptVariable]) -> list[PromptVariable]:
    """Each variable's fields, their number, and that no name is declared twice."""
    if len(variables) > MAX_VARIABLES:
        raise InvalidPromptError(f"{len(variables)} variables; at most {MAX_VARIABLES} are allowed", param="variables")
    seen: set[str] = set()
    for variable in variables:
        validate_variable_name(variable.name)
        validate_variable_description(variable.description)
        validate_variable_default(variable.default)
        if variable.name in seen:
            raise InvalidPromptError(f"variable {variable.name!r} is declared twice", param="variables")
        seen.add(variable.name)
    return list(variables)


def sort_key(name: str, version: int) -> str:
    return f"{name}#{version:0{VERSION_DIGITS}d}"


def name_prefix(name: str) -> str:
    # '#' cannot occur in a name, so the prefix of "a" never matches the versions of "a.b".
    return f"{name}#"


def label_key(name: str, label: str) -> str:
    return f"{name}@{label}"


def label_prefix(name: str) -> str:
    return f"{name}@"


class PromptVersion(BaseModel):
    """One immutable version of a tenant's named prompt template, with the labels pointing at it
    when it was read."""

    # ``labels`` is not stored with the version: the store's get, versions, list and create fill
    # it in; resolve (the chat path) leaves it empty.

    model_config = ConfigDict(frozen=True)

    object: Literal["prompt"] = "prompt"
    tenant: str
    name: str
    version: int
    template: str
    description: str = ""
    variables: list[PromptVariable] = []
    labels: list[str] = []
    created_at: datetime
    created_by: str | None = None  # the key id that wrote it, when known


class PromptLabel(BaseModel):
    """A movable name for one version of a prompt (``production``, ``staging``, ...)."""

    model_config = ConfigDict(frozen=True)

    object: Literal["prompt.label"] = "prompt.label"
    tenant: str
    name: str
    label: str
    version: int
    previous_version: int | None = None  # where it pointed before this move, so a rollback is visible
    updated_at: datetime
    updated_by: str | None = None
