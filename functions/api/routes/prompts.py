from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, WithJsonSchema

from functions.api.routes.errors import checked, error_responses
from strata.prompts import (
    PromptStore,
    PromptVersion,
    validate_description,
    validate_prompt_name,
    validate_template,
)
from strata.prompts.types import MAX_DESCRIPTION_CHARS, MAX_TEMPLATE_BYTES, MAX_VERSION, NAME_PATTERN
from strata.web import CurrentPrincipal, prompt_store

router = APIRouter(tags=["prompts"])

# str.strip()'s whitespace (what validate_template strips), spelled out: JSON Schema's \s differs.
_WHITESPACE = "".join(chr(c) for c in range(0x10000) if chr(c).isspace())
NOT_ONLY_WHITESPACE = "[^" + "".join(f"\\u{ord(c):04x}" for c in _WHITESPACE) + "]"
PromptName = Annotated[str, Path(pattern=NAME_PATTERN.pattern, description="The prompt's name")]


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
                "description": f"Not only whitespace; at most {MAX_TEMPLATE_BYTES} bytes in UTF-8",
            }
        ),
    ]
    description: Annotated[
        str, checked(validate_description), WithJsonSchema({"type": "string", "maxLength": MAX_DESCRIPTION_CHARS})
    ] = ""


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
    """A new version of the prompt ``name`` (version 1 for a new name)."""
    return store.create(
        principal.tenant,
        request.name,
        request.template,
        description=request.description,
        created_by=principal.key_id or None,
    )


@router.get("/v1/prompts/{name}", responses=error_responses(400, 401, 404))
def get_prompt(
    name: PromptName,
    principal: CurrentPrincipal,
    store: Annotated[PromptStore, Depends(prompt_store)],
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION, description="A version; the latest by default")] = None,
) -> PromptVersion:
    return store.get(principal.tenant, name, version)


@router.delete("/v1/prompts/{name}", responses=error_responses(400, 401, 403, 404))
def delete_prompt(
    name: PromptName, principal: CurrentPrincipal, store: Annotated[PromptStore, Depends(prompt_store)]
) -> PromptDeleted:
    """Delete every version of the prompt."""
    return PromptDeleted(name=name, versions=store.delete(principal.tenant, name))
