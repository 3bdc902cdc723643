from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Le
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from functions.api.routes.errors import checked, error_responses
from strata.chat.protocol import integer
from strata.prompts import (
    PromptLabel,
    PromptStore,
    PromptVariable,
    PromptVersion,
    validate_description,
    validate_label,
    validate_prompt_name,
    validate_template,
    validate_variable_default,
    validate_variable_description,
    validate_variable_name,
    validate_variables,
)
from strata.prompts.types import (
    LABEL_PATTERN,
    MAX_DESCRIPTION_CHARS,
    MAX_LABELS,
    MAX_TEMPLATE_BYTES,
    MAX_VARIABLE_DESCRIPTION_CHARS,
    MAX_VARIABLE_VALUE_BYTES,
    MAX_VARIABLES,
    MAX_VERSION,
    NAME_PATTERN,
    VARIABLE_PATTERN,
)
from strata.web import CurrentPrincipal, prompt_store

router = APIRouter(tags=["prompts"])

# str.strip()'s whitespace (what validate_template strips), spelled out: JSON Schema's \s differs.
_WHITESPACE = "".join(chr(c) for c in range(0x10000) if chr(c).isspace())
NOT_ONLY_WHITESPACE = "[^" + "".join(f"\\u{ord(c):04x}" for c in _WHITESPACE) + "]"
PromptName = Annotated[str, Path(pattern=NAME_PATTERN.pattern, description="The prompt's name")]
LabelInPath = Annotated[str, Path(pattern=LABEL_PATTERN.pattern, description="The label, e.g. production")]
Version = integer(Ge(1), Le(MAX_VERSION))  # 3 and 3.0, as JSON Schema's integer
Label = Annotated[str, checked(validate_label), WithJsonSchema({"type": "string", "pattern": LABEL_PATTERN.pattern})]


class PromptVariableSpec(PromptVariable):
    """A variable the new version declares (the library's checks, and the schema stating them)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: Annotated[
        str, checked(validate_variable_name), WithJsonSchema({"type": "string", "pattern": VARIABLE_PATTERN.pattern})
    ]
    description: Annotated[
        str,
        checked(validate_variable_description),
        WithJsonSchema({"type": "string", "maxLength": MAX_VARIABLE_DESCRIPTION_CHARS}),
    ] = ""
    required: Annotated[bool, Field(description="Not true when there is a default (which makes it optional)")] = True
    default: Annotated[
        str | None,
        checked(validate_variable_default),
        WithJsonSchema(
            {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": f"At most {MAX_VARIABLE_VALUE_BYTES} bytes in UTF-8; makes the variable optional",
            }
        ),
    ] = None


class CreatePrompt(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # The library checks each field (its messages name the rule); the schema states the same rule.
    name: Annotated[
        str, checked(validate_prompt_name), WithJsonSchema({"type": "string", "pattern": NAME_PATTERN.pattern})
    ]
    template: Annotated[
        str,
        checked(validate_template),
        WithJsonSchema(
            {
                "type": "string",
                "pattern": NOT_ONLY_WHITESPACE,
                "description": f"A Jinja2 template (sandboxed), not only whitespace; at most {MAX_TEMPLATE_BYTES} "
                "bytes in UTF-8. It must use exactly the declared variables.",
            }
        ),
    ]
    description: Annotated[
        str, checked(validate_description), WithJsonSchema({"type": "string", "maxLength": MAX_DESCRIPTION_CHARS})
    ] = ""
    variables: Annotated[
        list[PromptVariableSpec],
        Field(max_length=MAX_VARIABLES, description="The template's variables, each name once"),
        checked(validate_variables),
    ] = []
    labels: Annotated[list[Label], Field(max_length=MAX_LABELS, description="Labels to point at the new version")] = []


class SetLabel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: Version


class PromptList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PromptVersion]


class PromptDeleted(BaseModel):
    object: Literal["prompt.deleted"] = "prompt.deleted"
    name: str
    deleted: Literal[True] = True
    versions: int  # how many versions were deleted


@router.get("/v1/prompts", responses=error_responses(401))
def list_prompts(principal: CurrentPrincipal, store: Annotated[PromptStore, Depends(prompt_store)]) -> PromptList:
    """The latest version of each of the tenant's prompts."""
    return PromptList(data=store.list(principal.tenant))


@router.post("/v1/prompts", responses=error_responses(400, 401, 403, 409))
def create_prompt(
    request: CreatePrompt, principal: CurrentPrincipal, store: Annotated[PromptStore, Depends(prompt_store)]
) -> PromptVersion:
    """A new version of the prompt ``name`` (version 1 for a new name), with ``labels`` on it."""
    return store.create(
        principal.tenant,
        request.name,
        request.template,
        description=request.description,
        variables=[PromptVariable.model_validate(variable.model_dump()) for variable in request.variables],
        labels=request.labels,
        created_by=principal.key_id or None,
    )


@router.get("/v1/prompts/{name}", responses=error_responses(400, 401, 404))
def get_prompt(
    name: PromptName,
    principal: CurrentPrincipal,
    store: Annotated[PromptStore, Depends(prompt_store)],
    version: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="A version; the latest by default. Not with label.")
    ] = None,
    label: Annotated[
        str | None, Query(pattern=LABEL_PATTERN.pattern, description="The version this label points at")
    ] = None,
) -> PromptVersion:
    return store.get(principal.tenant, name, version, label=label)


@router.get("/v1/prompts/{name}/versions", responses=error_responses(400, 401, 404))
def list_prompt_versions(
    name: PromptName, principal: CurrentPrincipal, store: Annotated[PromptStore, Depends(prompt_store)]
) -> PromptList:
    """Every version of the prompt, oldest first, each with the labels pointing at it."""
    return PromptList(data=store.versions(principal.tenant, name))


@router.put("/v1/prompts/{name}/labels/{label}", responses=error_responses(400, 401, 403, 404))
def set_prompt_label(
    name: PromptName,
    label: LabelInPath,
    request: SetLabel,
    principal: CurrentPrincipal,
    store: Annotated[PromptStore, Depends(prompt_store)],
) -> PromptLabel:
    """Point the label at a version: create it, move it on, or roll it back. A chat request
    naming the label gets the new version within the prompt cache's TTL (10 s)."""
    return store.set_label(principal.tenant, name, label, request.version, updated_by=principal.key_id or None)


@router.delete("/v1/prompts/{name}", responses=error_responses(400, 401, 403, 404))
def delete_prompt(
    name: PromptName, principal: CurrentPrincipal, store: Annotated[PromptStore, Depends(prompt_store)]
) -> PromptDeleted:
    """Delete every version and label of the prompt."""
    return PromptDeleted(name=name, versions=store.delete(principal.tenant, name))
