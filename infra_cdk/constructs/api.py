"""The public REST API: OpenAI-compatible routes behind a Lambda REQUEST authorizer.

``POST /v1/chat/completions`` streams (``ResponseTransferMode.STREAM`` → the chat function's
``response-streaming-invocations``); every other route is a buffered Lambda proxy to the api
function. ``/healthz`` is the only route without authorization. API Gateway's own errors (bad or
missing key, denied, throttled, 5xx) come back in OpenAI's error shape.

The outer guards, before any function runs: AWS WAF (AWS's managed rule groups and a per-IP rate
rule), stage throttling, and a tighter throttle on the chat route. Per-tenant request and token
limits are the backend's (exact across replicas, in DynamoDB). CORS admits the frontend's origin
only: API Gateway answers the preflight, the functions and the gateway's own error responses carry
``Access-Control-Allow-Origin``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from strata.config.routes import (
    CORS_ALLOWED_HEADERS,
    CORS_ALLOWED_METHODS,
    ROUTES,
    UNAUTHORIZED_BODY,
    RouteSpec,
)


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
    chat_throttle_rate_limit / chat_throttle_burst_limit
        The chat route's own stage throttle (each request holds a GPU for seconds). Defaults:
        a fifth of the stage's.
    cors_origins
        Browser origins allowed to call the API (the frontend's). Default none (no CORS).
    waf_rate_limit_per_5_min
        AWS WAF's per-IP limit over 5 minutes; ``None`` deploys no web ACL. Default 2000.
    log_retention
        Access log (and WAF log) retention. Default one month.
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
    chat_throttle_rate_limit: float | None = None
    chat_throttle_burst_limit: int | None = None
    cors_origins: tuple[str, ...] = ()
    waf_rate_limit_per_5_min: int | None = 2000
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
    web_acl
        The AWS WAF web ACL on the stage (``None`` when turned off).
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
                method_options={
                    "/v1/chat/completions/POST": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=props.chat_throttle_rate_limit or props.throttle_rate_limit / 5,
                        throttling_burst_limit=props.chat_throttle_burst_limit
                        or max(1, props.throttle_burst_limit // 5),
                    )
                },
            ),
            default_cors_preflight_options=(
                apigw.CorsOptions(
                    allow_origins=list(props.cors_origins),
                    allow_methods=list(CORS_ALLOWED_METHODS),
                    allow_headers=list(CORS_ALLOWED_HEADERS),
                    max_age=Duration.hours(1),
                )
                if props.cors_origins
                else None
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

        # A gateway response carries one static origin: the browser may then read the 401 or 429.
        cors_headers = (
            {"Access-Control-Allow-Origin": f"'{props.cors_origins[0]}'"} if len(props.cors_origins) == 1 else {}
        )
        for error in _gateway_errors():
            self.rest_api.add_gateway_response(
                error.response_type.response_type,
                type=error.response_type,
                status_code=error.status_code,
                response_headers={**dict(error.headers), **cors_headers} or None,
                templates={"application/json": openai_error_template(error.error_type, error.code, error.message)},
            )

        self.web_acl = (
            self._web_acl(props.waf_rate_limit_per_5_min, props.log_retention)
            if props.waf_rate_limit_per_5_min is not None
            else None
        )

    def _web_acl(self, rate_limit: int, retention: logs.RetentionDays) -> wafv2.CfnWebACL:
        """AWS's baseline, known-bad-inputs and IP-reputation rule groups, and a per-IP rate rule.

        The baseline group's body-size rule only counts: a chat request with its history is often
        over its 8 KB, and the functions bound the body themselves (``STRATA_MAX_REQUEST_BYTES``).
        """
        stage = self.rest_api.deployment_stage
        managed = [
            ("AWSManagedRulesCommonRuleSet", ["SizeRestrictions_BODY"]),
            ("AWSManagedRulesKnownBadInputsRuleSet", []),
            ("AWSManagedRulesAmazonIpReputationList", []),
        ]
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for rule in counted
                        ]
                        or None,
                    )
                ),
                visibility_config=_visibility(name),
            )
            for priority, (name, counted) in enumerate(managed)
        ]
        rules.append(
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerIp",
                priority=len(managed),
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=rate_limit, aggregate_key_type="IP", evaluation_window_sec=300
                    )
                ),
                visibility_config=_visibility("RatePerIp"),
            )
        )
        web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=rules,
            visibility_config=_visibility("StrataApi"),
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=stage.stage_arn, web_acl_arn=web_acl.attr_arn
        )
        # WAF writes only to log groups named aws-waf-logs-*; the API key never reaches them.
        stack = Stack.of(self)
        waf_logs = logs.LogGroup(
            self,
            "WafLogs",
            log_group_name=f"aws-waf-logs-{stack.stack_name}",
            retention=retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        logging = wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            resource_arn=web_acl.attr_arn,
            # The group's ARN without CloudFormation's trailing ":*", as WAF expects it.
            log_destination_configs=[
                stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=waf_logs.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "authorization"})
            ],
        )
        logging.node.add_dependency(waf_logs)
        return web_acl

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


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


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
