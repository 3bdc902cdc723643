from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from functions.api.routes.errors import checked, error_responses
from strata.prompts import (
    PromptStore,
    PromptVersion,
    validate_description,
    validate_prompt_name,
    validate_template,
)
from strata.prompts.types import MAX_VERSION, NAME_PATTERN
from strata.web import CurrentPrincipal, prompt_store

router = APIRouter(tags=["prompts"])

PromptName = Annotated[str, Path(pattern=NAME_PATTERN.pattern, description="The prompt's name")]


class CreatePrompt(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, checked(validate_prompt_name)]
    template: Annotated[str, checked(validate_template)]
    description: Annotated[str, checked(validate_description)] = ""


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
