from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from strata.inference import ModelRegistry
from strata.web import CurrentPrincipal, model_registry

router = APIRouter(tags=["models"])


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "strata"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


@router.get("/v1/models")
def list_models(_: CurrentPrincipal, registry: Annotated[ModelRegistry, Depends(model_registry)]) -> ModelList:
    return ModelList(data=[Model(id=alias) for alias in registry.aliases])
