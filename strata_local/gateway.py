"""The local API Gateway: the same routes as the CDK app's REST API, the same authorizer code.

Each request to an authorized route builds an API Gateway REQUEST-authorizer event, calls the
authorizer function's handler, and hands the request to the function's ASGI app with the
authorizer context in ``x-amzn-request-context`` — the header the Lambda Web Adapter sets in AWS.
Responses pass straight through, so streamed answers are not buffered.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strata.config import RESOURCES, RouteSpec
from strata.config.frontend import CONFIG_OBJECT
from strata.web import REQUEST_CONTEXT_HEADER, UNAUTHORIZED_BODY, error_response
from strata_local.aws import LOCAL_ACCOUNT
from strata_local.lambda_context import LocalLambdaContext

logger = logging.getLogger(__name__)

LOCAL_API_ID = "local"
LOCAL_STAGE = "local"
Authorizer = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Route:
    """Methods on one path template (``/v1/documents/{document_id}``) served by one app."""

    path: str
    app: ASGIApp
    authorized: bool = True
    methods: frozenset[str] | None = None  # None: any method
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", self.path) + "$"))

    def matches(self, path: str) -> bool:
        return self.pattern.match(path) is not None


@dataclass(frozen=True, slots=True)
class FrontendSite:
    """The chat page as CloudFront serves it: its files, its ``config.json`` and the security
    headers (the content security policy above all) on every file."""

    directory: Path
    config: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def routes_from_table(table: Iterable[RouteSpec], functions: Mapping[str, ASGIApp]) -> list[Route]:
    """The gateway's routes, as API Gateway's methods are built: from the route table."""
    grouped: dict[tuple[str, str, bool], set[str]] = {}
    for spec in table:
        grouped.setdefault((spec.path, spec.function, spec.authorized), set()).add(spec.method)
    return [
        Route(path, functions[function], authorized=authorized, methods=frozenset(methods))
        for (path, function, authorized), methods in grouped.items()
    ]


class LocalGateway:
    def __init__(
        self,
        *,
        routes: list[Route],
        authorizer: Authorizer,
        frontend: FrontendSite | None = None,
        region: str = "us-east-1",
        authorizer_cache_ttl_s: float = RESOURCES.api.authorizer_cache_ttl_s,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._routes = routes
        self._authorizer = authorizer
        self._region = region
        # API Gateway's authorizer result cache: a policy is reused for the same Authorization
        # header until the TTL runs out (refusals are not cached).
        self._policies: dict[str, tuple[float, dict[str, Any]]] = {}
        self._cache_ttl_s = authorizer_cache_ttl_s
        self._clock = clock
        self._site = frontend
        self._frontend = StaticFiles(directory=frontend.directory, html=True) if frontend else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _accept_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        on_path = [r for r in self._routes if r.matches(scope["path"])]
        route = next((r for r in on_path if r.methods is None or scope["method"] in r.methods), None)
        if route is None:
            if on_path:
                allowed = sorted(m for r in on_path for m in r.methods or ())
                message = f"Method {scope['method']} is not allowed on {scope['path']}"
                response = error_response(
                    405,
                    message,
                    type_="invalid_request_error",
                    code="method_not_allowed",
                    headers={"Allow": ", ".join(allowed)},
                )
                await response(scope, receive, send)
            else:
                await self._static(scope, receive, send)
            return
        context: dict[str, Any] = {}
        if route.authorized:
            denial, context = await self._authorize(scope)
            if denial is not None:
                await denial(scope, receive, send)
                return
        await route.app(_with_request_context(scope, context), receive, send)

    async def _static(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The chat page's files and its config.json; anything else is a 404 in the API's error shape."""
        if self._site is not None and self._frontend is not None and scope["method"] in ("GET", "HEAD"):
            headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self._site.headers.items()]

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), *headers]}
                await send(message)

            if scope["path"] == f"/{CONFIG_OBJECT}":
                config = JSONResponse(self._site.config, headers={"Cache-Control": "no-cache"})
                await config(scope, receive, send_with_headers)
                return
            try:
                await self._frontend(scope, receive, send_with_headers)
                return
            except HTTPException as error:
                if error.status_code != 404:
                    raise
        await error_response(404, "Not found", type_="invalid_request_error", code="not_found")(scope, receive, send)

    async def _authorize(self, scope: Scope) -> tuple[JSONResponse | None, dict[str, Any]]:
        """API Gateway's answers: 401 when the authorizer says Unauthorized, 403 when its policy
        denies the method, 500 when it fails."""
        event = self._authorizer_event(scope)
        identity = event["headers"].get("authorization")
        if not identity:  # API Gateway refuses a missing identity source without calling the authorizer
            return JSONResponse(UNAUTHORIZED_BODY, 401), {}
        cached = self._policies.get(identity)
        latency_ms = 0.0
        if cached is not None and cached[0] > self._clock():
            policy = cached[1]
        else:
            began = time.perf_counter()
            try:
                policy = await run_in_threadpool(self._authorizer, event, LocalLambdaContext("strata-authorizer"))
            except Exception as error:
                if str(error) == "Unauthorized":
                    return JSONResponse(UNAUTHORIZED_BODY, 401), {}
                logger.exception("authorizer failed")
                return error_response(500, "Internal server error", type_="api_error", code="authorizer_error"), {}
            latency_ms = round((time.perf_counter() - began) * 1000, 3)
            if self._cache_ttl_s > 0:
                self._policies[identity] = (self._clock() + self._cache_ttl_s, policy)
        if not _allows(policy, event["methodArn"]):
            message = "User is not authorized to access this resource"
            return error_response(403, message, type_="invalid_request_error", code="permission_denied"), {}
        # API Gateway passes the authorizer's latency as $context.authorizer.latency.
        return None, {**(policy.get("context") or {}), "latency": latency_ms}

    def _authorizer_event(self, scope: Scope) -> dict[str, Any]:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        api = f"arn:aws:execute-api:{self._region}:{LOCAL_ACCOUNT}:{LOCAL_API_ID}"
        return {
            "type": "REQUEST",
            "methodArn": f"{api}/{LOCAL_STAGE}/{method}{path}",
            "resource": path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "queryStringParameters": {},
            "requestContext": {
                "accountId": LOCAL_ACCOUNT,
                "apiId": LOCAL_API_ID,
                "stage": LOCAL_STAGE,
                "httpMethod": method,
                "path": path,
            },
        }


def _allows(policy: dict[str, Any], method_arn: str) -> bool:
    """IAM evaluation for the policy an authorizer returns: an explicit Deny wins over Allow."""
    allowed = False
    for statement in policy.get("policyDocument", {}).get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, pattern) for pattern in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _with_request_context(scope: Scope, authorizer_context: dict[str, Any]) -> Scope:
    context = {"requestId": str(uuid.uuid4()), "stage": LOCAL_STAGE, "authorizer": authorizer_context}
    # A client must never pass its own context: drop any incoming copy of the header.
    headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() != REQUEST_CONTEXT_HEADER]
    headers.append((REQUEST_CONTEXT_HEADER.encode(), json.dumps(context).encode()))
    return {**scope, "headers": headers}


async def _accept_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
