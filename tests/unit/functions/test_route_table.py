"""One route table: the functions' apps, and so the OpenAPI document, serve exactly its routes
(the CDK API and the local gateway are built from it directly; their tests check that)."""

from __future__ import annotations

from functions.api.app import app as api_app
from functions.chat.app import app as chat_app
from functions.openapi import public_openapi
from strata.config import ROUTES


def _served(app) -> set[tuple[str, str]]:
    return {(method, path) for path, item in app.openapi()["paths"].items() for method in (m.upper() for m in item)}


def test_each_function_serves_exactly_its_routes_of_the_table() -> None:
    for function, app in (("chat", chat_app), ("api", api_app)):
        assert _served(app) == {(r.method, r.path) for r in ROUTES if r.function == function}, function


def test_the_openapi_document_has_every_route_of_the_table_and_no_other() -> None:
    document = public_openapi()
    documented = {(m.upper(), path) for path, item in document["paths"].items() for m in item}
    assert documented == {(r.method, r.path) for r in ROUTES}


def test_every_documented_error_is_in_openais_shape_and_no_422_is_promised() -> None:
    document = public_openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")) and (method, path) != ("get", "/healthz"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
    assert document["paths"]["/healthz"]["get"]["security"] == []
