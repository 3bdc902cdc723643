"""Buffered routes (FastAPI via Mangum): every route of the API but the streamed chat."""

from __future__ import annotations

from fastapi import FastAPI
from mangum import Mangum

from functions.api.routes import (
    documents,
    embeddings,
    feedback,
    health,
    keys,
    limits,
    models,
    prompts,
    search,
    usage,
)
from strata.observability import function_logger
from strata.web import install_error_handlers
from strata.web.cors import install_cors

logger = function_logger("strata-api")
app = FastAPI(title="Strata API", version="0.1.0")
install_error_handlers(app)
install_cors(app)
for module in (health, models, embeddings, search, usage, documents, prompts, keys, limits, feedback):
    app.include_router(module.router)

handler = Mangum(app, lifespan="off")
