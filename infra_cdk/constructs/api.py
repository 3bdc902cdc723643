"""The public REST API: OpenAI-compatible routes behind a Lambda REQUEST authorizer.

``POST /v1/chat/completions`` streams (``ResponseTransferMode.STREAM`` → the chat function's
``response-streaming-invocations``); every other route is a buffered Lambda proxy to the api
function. ``/healthz`` is the only route without authorization. API Gateway's own errors (bad or
missing key, denied, throttled, 5xx) come back in OpenAI's error shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from strata.config.routes import ROUTES, UNAUTHORIZED_BODY, RouteSpec


@dataclass(frozen=True, slots=True)
class GatewayError:
    """One API Gateway response rendered in OpenAI's error shape."""

    response_type: apigw.ResponseType
    status_code: str | None
    error_type: str
    code: str | None
    headers: tuple[tuple[str, str], ...] = ()
    message: str | None = None  # None: API Gateway's own message


def openai_error_template(error_type: str, code: str | None, message: str | None = None) -> str:
    """A mapping template producing ``{"error": {"message", "type", "param": null, "code"}}``."""
    # $context.error.messageString is API Gateway's message, already JSON-quoted and escaped.
    message_json = json.dumps(message) if message is not None else "$context.error.messageString"
    code_json = json.dumps(code)
    return (
        f'{{"error": {{"message": {message_json}, '
        f'"type": {json.dumps(error_type)}, "param": null, "code": {code_json}}}}}'
    )


def _gateway_errors() -> tuple[GatewayError, ...]:
    return (
        # The same body the local gateway sends: one definition in strata.web.
        GatewayError(
            apigw.ResponseType.UNAUTHORIZED,
            "401",
            UNAUTHORIZED_BODY["error"]["type"],
            UNAUTHORIZED_BODY["error"]["code"],
            headers=(("WWW-Authenticate", "'Bearer'"),),
            message=UNAUTHORIZED_BODY["error"]["message"],
        ),
        GatewayError(apigw.ResponseType.ACCESS_DENIED, "403", "invalid_request_error", "permission_denied"),
        GatewayError(apigw.ResponseType.THROTTLED, "429", "requests", "rate_limit_exceeded"),
        GatewayError(apigw.ResponseType.DEFAULT_4_XX, None, "invalid_request_error", None),
        GatewayError(apigw.ResponseType.DEFAULT_5_XX, None, "server_error", None),
    )


@dataclass(frozen=True, slots=True)
class ApiProps:
    """Props of :class:`Api`.

    chat_function / api_function / authorizer_function
        The streamed route's function, the buffered routes' function and the authorizer.
    stage_name
        Deployment stage (the first path segment of the URL). Default ``dev``.
    routes
        The API's routes. Default ``strata.config.ROUTES``, the table the local gateway and the
        OpenAPI document are built from: ``chat`` routes stream from the chat function, ``api``
        routes are buffered proxies to the api function.
    throttle_rate_limit / throttle_burst_limit
        Stage-wide throttling. Defaults 50 requests/s, burst 100.
    authorizer_cache_ttl_s
        Authorizer result cache per ``Authorization`` header. Default 60 s.
    chat_timeout_s
        Streaming integration timeout (up to 15 minutes). Default 300 s.
    log_retention
        Access log retention. Default one month.
    """

    chat_function: lambda_.IFunction
    api_function: lambda_.IFunction
    authorizer_function: lambda_.IFunction
    stage_name: str = "dev"
    routes: tuple[RouteSpec, ...] = ROUTES
    throttle_rate_limit: float = 50.0
    throttle_burst_limit: int = 100
    authorizer_cache_ttl_s: int = 60
    chat_timeout_s: int = 300
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


class Api(Construct):
    """REST API (regional) with access logs, execution logs (errors), X-Ray and stage throttling.

    Attributes
    ----------
    rest_api
        The API; ``rest_api.url`` ends with the stage (``.../dev/``).
    authorizer
        REQUEST authorizer on the ``Authorization`` header.
    chat_method
        ``POST /v1/chat/completions``.
    methods
        Every method by ``"<METHOD> <path>"``.
    """

    def __init__(self, scope: Construct, construct_id: str, props: ApiProps) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=props.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            description="Strata: OpenAI-compatible chat, embeddings and documents",
            endpoint_types=[apigw.EndpointType.REGIONAL],  # streams idle out after 30 s on edge
            cloud_watch_role=True,  # execution logging needs the account-level CloudWatch role
            deploy_options=apigw.StageOptions(
                stage_name=props.stage_name,
                throttling_rate_limit=props.throttle_rate_limit,
                throttling_burst_limit=props.throttle_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=_access_log_format(),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies carry prompts: never log them
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "Authorizer",
            handler=props.authorizer_function,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=Duration.seconds(props.authorizer_cache_ttl_s),
        )

        self.methods: dict[str, apigw.Method] = {}
        integrations: dict[str, apigw.Integration] = {
            "chat": apigw.LambdaIntegration(
                props.chat_function,
                response_transfer_mode=apigw.ResponseTransferMode.STREAM,
                timeout=Duration.seconds(props.chat_timeout_s),
            ),
            "api": apigw.LambdaIntegration(props.api_function),
        }
        for route in props.routes:
            self._add_method(route.path, route.method, integrations[route.function], authorized=route.authorized)
        self.chat_method = self.methods["POST /v1/chat/completions"]

        for error in _gateway_errors():
            self.rest_api.add_gateway_response(
                error.response_type.response_type,
                type=error.response_type,
                status_code=error.status_code,
                response_headers=dict(error.headers) or None,
                templates={"application/json": openai_error_template(error.error_type, error.code, error.message)},
            )

    def _add_method(
        self, path: str, http_method: str, integration: apigw.Integration, *, authorized: bool
    ) -> apigw.Method:
        resource = self.rest_api.root.resource_for_path(path)
        options: dict[str, object] = (
            {"authorizer": self.authorizer, "authorization_type": apigw.AuthorizationType.CUSTOM}
            if authorized
            else {"authorization_type": apigw.AuthorizationType.NONE}
        )
        method = resource.add_method(http_method, integration, **options)
        self.methods[f"{http_method} {path}"] = method
        return method


def _access_log_format() -> apigw.AccessLogFormat:
    field = apigw.AccessLogField
    return apigw.AccessLogFormat.custom(
        json.dumps(
            {
                "requestId": field.context_request_id(),
                "xrayTraceId": field.context_xray_trace_id(),
                "ip": field.context_identity_source_ip(),
                "userAgent": field.context_identity_user_agent(),
                "requestTime": field.context_request_time(),
                "httpMethod": field.context_http_method(),
                "resourcePath": field.context_resource_path(),
                "status": field.context_status(),
                "responseLength": field.context_response_length(),
                "responseLatency": field.context_response_latency(),
                "integrationLatency": field.context_integration_latency(),
                "tenant": field.context_authorizer("tenant"),
                # The authorizer's share of responseLatency: key lookups, JWKS fetches, cold starts.
                "authorizerLatency": field.context_authorizer_latency(),
                "authorizerError": field.context_authorizer_error(),
                "errorType": field.context_error_response_type(),
            }
        )
    )
