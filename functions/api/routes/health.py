from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from strata.inference import BreakerState, CircuitBreakers, ModelRegistry
from strata.web import breakers, model_registry

router = APIRouter(tags=["health"])


class TargetHealth(BaseModel):
    provider: str
    breaker: BreakerState
    failures: int
    last_error: str | None = None


class Health(BaseModel):
    # ok: every target closed; degraded: some open, the default still has one to serve it;
    # unavailable (503): every target of the default alias is open.
    status: Literal["ok", "degraded", "unavailable"]
    models: dict[str, TargetHealth]


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(
    registry: Annotated[ModelRegistry, Depends(model_registry)],
    circuit: Annotated[CircuitBreakers, Depends(breakers)],
) -> Any:
    models = {}
    for alias, target in registry.models.items():
        record = circuit.state(alias)
        models[alias] = TargetHealth(
            provider=target.provider, breaker=record.state, failures=record.failures, last_error=record.last_error
        )
    open_ = {alias for alias, health in models.items() if health.breaker is BreakerState.OPEN}
    if all(alias in open_ for alias in registry.chain("default")):
        return JSONResponse(Health(status="unavailable", models=models).model_dump(mode="json"), status_code=503)
    return Health(status="degraded" if open_ else "ok", models=models)
