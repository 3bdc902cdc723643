from __future__ import annotations

import json
from pathlib import Path

from functions.openapi import public_openapi

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


def test_the_published_document_is_the_one_the_code_generates() -> None:
    assert json.loads(DOCUMENT.read_text()) == public_openapi(), "regenerate: strata openapi > docs/openapi.json"


def test_the_document_describes_the_public_api() -> None:
    document = public_openapi()
    chat = document["paths"]["/v1/chat/completions"]["post"]
    schema = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema.endswith("/ChatCompletionRequest")
    assert {"/v1/embeddings", "/v1/models", "/v1/documents", "/healthz"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
