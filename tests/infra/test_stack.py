"""The synthesized StrataStack template: what each construct promises, read back from CloudFormation."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk.assertions import Annotations, Match, Template

from infra_cdk.constructs.functions import METRICS_NAMESPACE
from infra_cdk.stack import PROJECT_ROOT, StrataStack
from strata.config import RESOURCES, Settings
from strata.config.resources import TableSpec
from strata.config.routes import ROUTES, UNAUTHORIZED_BODY
from strata.config.settings import ENV_PREFIX

if TYPE_CHECKING:
    from tests.infra.conftest import Synthesized

DAY_S = 24 * 60 * 60


def _resources(template: Template, type_: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
    return template.find_resources(type_, {"Properties": props} if props else None)


def _logical_id(stack: StrataStack, construct: Any) -> str:
    return stack.get_logical_id(construct.node.default_child)


def _functions(template: Template) -> dict[str, dict[str, Any]]:
    """Strata's Lambdas (CDK's own custom-resource handlers have no STRATA_ environment)."""
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in _resources(template, "AWS::Lambda::Function").items()
        if logical_id.startswith("Functions")
    }


def _policy_statements(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in _resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _statements_of(template: Template, stack: StrataStack, function: Any) -> list[dict[str, Any]]:
    return _policy_statements(template, _logical_id(stack, function.role))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _table_grants(statements: list[dict[str, Any]], stack: StrataStack) -> dict[str, set[str]]:
    """DynamoDB actions granted per table, by the table's logical name (``strata-keys`` ...)."""
    names = {_logical_id(stack, stack.tables.table(spec)): spec.name for spec in RESOURCES.tables}
    grants: dict[str, set[str]] = {}
    for statement in statements:
        actions = {a for a in _as_list(statement["Action"]) if a.startswith("dynamodb:")}
        if not actions:
            continue
        for resource in _as_list(statement["Resource"]):
            if resource == {"Ref": "AWS::NoValue"}:  # CDK's placeholder for index ARNs
                continue
            if "Fn::Join" in resource:  # a table's own indexes: <table arn>/index/*
                arn, suffix = resource["Fn::Join"][1]
                assert suffix == "/index/*", resource
                resource = arn
            table = names[resource["Fn::GetAtt"][0]]  # a grant on anything but a table fails here
            grants.setdefault(table, set()).update(actions)
    return grants


_READ = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan"}
_WRITE = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def _reads_only(actions: set[str]) -> bool:
    return actions >= _READ and not actions & _WRITE


def _render_gateway_template(mapping_template: str, message: str) -> dict[str, Any]:
    """What API Gateway sends for ``mapping_template`` (``messageString`` is the quoted message)."""
    return json.loads(mapping_template.replace("$context.error.messageString", json.dumps(message)))


# --- documents: bucket → queue → DLQ -------------------------------------------------------------


def test_bucket_notifies_ingest_queue_of_created_and_removed_objects_under_tenant_prefix(
    template: Template, stack: StrataStack
) -> None:
    queue_arn = {"Fn::GetAtt": [_logical_id(stack, stack.storage.queue), "Arn"]}
    prefix_filter = {"Key": {"FilterRules": [{"Name": "prefix", "Value": RESOURCES.documents_bucket.prefix}]}}

    (notifications,) = _resources(template, "Custom::S3BucketNotifications").values()

    configurations = notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert sorted(configurations, key=lambda c: c["Events"]) == [
        {"Events": [event], "Filter": prefix_filter, "QueueArn": queue_arn}
        for event in sorted(RESOURCES.documents_bucket.events)
    ]
    assert set(RESOURCES.documents_bucket.events) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}


def test_ingest_queue_redrives_to_dlq_with_the_shared_queue_spec(template: Template, stack: StrataStack) -> None:
    spec = RESOURCES.ingest_queue
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": spec.visibility_timeout_s,
            "MessageRetentionPeriod": spec.retention_days * DAY_S,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "maxReceiveCount": spec.max_receive_count,
                "deadLetterTargetArn": {"Fn::GetAtt": [_logical_id(stack, stack.storage.dlq), "Arn"]},
            },
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"MessageRetentionPeriod": spec.dlq_retention_days * DAY_S, "RedrivePolicy": Match.absent()},
    )


def test_queues_and_buckets_refuse_plain_http(template: Template) -> None:
    deny_insecure = {"Bool": {"aws:SecureTransport": "false"}}
    assert len(_resources(template, "AWS::SQS::Queue")) == len(_resources(template, "AWS::SQS::QueuePolicy")) == 2
    assert len(_resources(template, "AWS::S3::Bucket")) == len(_resources(template, "AWS::S3::BucketPolicy"))
    for policy_type in ("AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"):
        policies = _resources(template, policy_type)
        for logical_id, policy in policies.items():
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            assert any(st["Effect"] == "Deny" and st.get("Condition") == deny_insecure for st in statements), logical_id


def test_documents_bucket_is_private_encrypted_versioned_and_logged(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "documents/"}),
        },
    )


# --- tables ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", RESOURCES.tables, ids=lambda spec: spec.name)
def test_table_keys_match_its_spec(template: Template, spec: Any) -> None:
    def schema(keys: Any) -> list[dict[str, str]]:
        return [{"AttributeName": keys.partition_key, "KeyType": "HASH"}] + (
            [{"AttributeName": keys.sort_key, "KeyType": "RANGE"}] if keys.sort_key else []
        )

    names = {k["AttributeName"] for keys in (spec, *spec.indexes) for k in schema(keys)}
    (table,) = [
        resource["Properties"]
        for resource in template.find_resources("AWS::DynamoDB::Table").values()
        if resource["Properties"]["KeySchema"] == schema(spec)
        and {a["AttributeName"] for a in resource["Properties"]["AttributeDefinitions"]} == names
    ]
    assert all(a["AttributeType"] == "S" for a in table["AttributeDefinitions"])
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    ttl = {"AttributeName": spec.ttl_attribute, "Enabled": True} if spec.ttl_attribute else None
    assert table.get("TimeToLiveSpecification") == ttl
    indexes = [
        {"IndexName": index.name, "KeySchema": schema(index), "Projection": {"ProjectionType": "ALL"}}
        for index in spec.indexes
    ]
    assert table.get("GlobalSecondaryIndexes", []) == indexes


def test_one_table_per_spec(template: Template) -> None:
    assert len(_resources(template, "AWS::DynamoDB::Table")) == len(RESOURCES.tables)


def test_gateway_tables_exist_and_rate_limit_buckets_expire(template: Template, stack: StrataStack) -> None:
    tables = _resources(template, "AWS::DynamoDB::Table")
    for spec in (
        RESOURCES.tenants_table,
        RESOURCES.rate_limits_table,
        RESOURCES.prompts_table,
        RESOURCES.feedback_table,
    ):
        assert _logical_id(stack, stack.tables.table(spec)) in tables, spec.name
    rate_limits = tables[_logical_id(stack, stack.tables.table(RESOURCES.rate_limits_table))]["Properties"]
    assert rate_limits["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    keys = tables[_logical_id(stack, stack.tables.table(RESOURCES.keys_table))]["Properties"]
    assert keys["KeySchema"] == [{"AttributeName": "key_id", "KeyType": "HASH"}]


# --- API ------------------------------------------------------------------------------------------


def test_chat_completions_streams_from_the_chat_function(template: Template, stack: StrataStack) -> None:
    chat_arn = {"Fn::GetAtt": [_logical_id(stack, stack.functions.chat), "Arn"]}
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "ResourceId": {"Ref": stack.get_logical_id(stack.api.chat_method.resource.node.default_child)},
            "Integration": Match.object_like(
                {
                    "Type": "AWS_PROXY",
                    "ResponseTransferMode": "STREAM",
                    "TimeoutInMillis": stack.config.api.chat_timeout_s * 1000,
                    "Uri": {
                        "Fn::Join": [
                            "",
                            Match.array_with(
                                [
                                    Match.string_like_regexp("/2021-11-15/functions/$"),
                                    chat_arn,
                                    "/response-streaming-invocations",
                                ]
                            ),
                        ]
                    },
                }
            ),
        },
    )


def test_only_chat_completions_streams(template: Template) -> None:
    streaming = _resources(template, "AWS::ApiGateway::Method", {"Integration": {"ResponseTransferMode": "STREAM"}})
    assert len(streaming) == 1


def test_authorizer_guards_every_route_except_healthz(template: Template, stack: StrataStack) -> None:
    authorizer_ref = {"Ref": stack.get_logical_id(stack.api.authorizer.node.default_child)}
    methods = stack.api.methods
    assert set(methods) == {f"{route.method} {route.path}" for route in ROUTES}
    resources = _resources(template, "AWS::ApiGateway::Method")
    for name, method in methods.items():
        properties = resources[stack.get_logical_id(method.node.default_child)]["Properties"]
        if name == "GET /healthz":
            assert properties["AuthorizationType"] == "NONE"
            assert "AuthorizerId" not in properties
        else:
            assert properties["AuthorizationType"] == "CUSTOM", name
            assert properties["AuthorizerId"] == authorizer_ref, name


def _resource_paths(template: Template) -> dict[str, str]:
    """Every ``AWS::ApiGateway::Resource`` by logical id → its full path, read from the template."""
    resources = {lid: r["Properties"] for lid, r in _resources(template, "AWS::ApiGateway::Resource").items()}

    def path(parent: dict[str, Any]) -> str:
        if "Fn::GetAtt" in parent:  # the API's root resource
            return ""
        properties = resources[parent["Ref"]]
        return f"{path(properties['ParentId'])}/{properties['PathPart']}"

    return {lid: path({"Ref": lid}) for lid in resources}


def test_the_template_has_exactly_one_method_per_route_of_the_route_table(
    template: Template, stack: StrataStack
) -> None:
    paths = _resource_paths(template)
    methods = _resources(template, "AWS::ApiGateway::Method").values()
    synthesized = sorted(
        (method["Properties"]["HttpMethod"], paths[method["Properties"]["ResourceId"]["Ref"]])
        for method in methods
        if method["Properties"]["HttpMethod"] != "OPTIONS"
    )
    assert synthesized == sorted((route.method, route.path) for route in ROUTES)


def test_cors_preflights_admit_the_frontends_origin_only_and_need_no_key(
    template: Template, stack: StrataStack
) -> None:
    paths = _resource_paths(template)
    preflights = {
        paths.get(method["Properties"]["ResourceId"].get("Ref"), "/"): method["Properties"]
        for method in _resources(template, "AWS::ApiGateway::Method").values()
        if method["Properties"]["HttpMethod"] == "OPTIONS"
    }
    assert {route.path for route in ROUTES} <= preflights.keys()
    distribution = stack.get_logical_id(stack.frontend.distribution.node.default_child)

    def names_the_page(value: Any) -> bool:  # 'https://<the distribution's domain>'
        text = json.dumps(value)
        return "https://" in text and f'"{distribution}", "DomainName"' in text

    for path, preflight in preflights.items():
        assert preflight["AuthorizationType"] == "NONE", path  # a preflight carries no key
        headers = preflight["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
        assert names_the_page(headers["method.response.header.Access-Control-Allow-Origin"]), path
    # The 401s and 429s API Gateway answers itself name the origin too, or the page could not read them.
    for response in _resources(template, "AWS::ApiGateway::GatewayResponse").values():
        assert names_the_page(
            response["Properties"]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        )
    for function in (stack.functions.chat, stack.functions.api):
        env = _functions(template)[_logical_id(stack, function)]["Environment"]["Variables"]
        assert names_the_page(env["STRATA_CORS_ORIGINS"])


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: f"{route.method} {route.path}")
def test_each_route_has_its_integration_and_authorization(template: Template, stack: StrataStack, route: Any) -> None:
    paths = _resource_paths(template)
    (method,) = [
        m["Properties"]
        for m in _resources(template, "AWS::ApiGateway::Method", {"HttpMethod": route.method}).values()
        if paths[m["Properties"]["ResourceId"]["Ref"]] == route.path
    ]
    function = stack.functions.chat if route.streaming else stack.functions.api
    integration = method["Integration"]
    uri = json.dumps(integration["Uri"])

    assert integration["Type"] == "AWS_PROXY"
    assert json.dumps({"Fn::GetAtt": [_logical_id(stack, function), "Arn"]}) in uri
    if route.streaming:
        assert integration["ResponseTransferMode"] == "STREAM"
        assert "/response-streaming-invocations" in uri
    else:
        assert integration.get("ResponseTransferMode", "BUFFERED") == "BUFFERED"
        assert "/response-streaming-invocations" not in uri
    if route.authorized:
        assert method["AuthorizationType"] == "CUSTOM"
        assert method["AuthorizerId"] == {"Ref": stack.get_logical_id(stack.api.authorizer.node.default_child)}
    else:
        assert route.path == "/healthz"
        assert method["AuthorizationType"] == "NONE"
        assert "AuthorizerId" not in method


def test_authorizer_reads_the_authorization_header_with_a_short_cache(template: Template, stack: StrataStack) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "REQUEST",
            "IdentitySource": "method.request.header.Authorization",
            "AuthorizerResultTtlInSeconds": stack.config.api.authorizer_cache_ttl_s,
        },
    )
    assert stack.config.api.authorizer_cache_ttl_s <= 300


def test_missing_or_wrong_key_gets_the_same_401_body_as_the_local_gateway(template: Template) -> None:
    (response,) = _resources(template, "AWS::ApiGateway::GatewayResponse", {"ResponseType": "UNAUTHORIZED"}).values()

    assert response["Properties"]["StatusCode"] == "401"
    body = _render_gateway_template(response["Properties"]["ResponseTemplates"]["application/json"], "Unauthorized")
    assert body == UNAUTHORIZED_BODY


def test_denied_requests_use_openai_error_shape(template: Template) -> None:
    (response,) = _resources(template, "AWS::ApiGateway::GatewayResponse", {"ResponseType": "ACCESS_DENIED"}).values()

    assert response["Properties"]["StatusCode"] == "403"
    body = _render_gateway_template(response["Properties"]["ResponseTemplates"]["application/json"], "Denied")
    assert body == {
        "error": {"message": "Denied", "type": "invalid_request_error", "param": None, "code": "permission_denied"}
    }


@pytest.mark.parametrize("response_type", ["DEFAULT_4XX", "DEFAULT_5XX", "THROTTLED"])
def test_other_gateway_errors_use_openai_error_shape(template: Template, response_type: str) -> None:
    (response,) = _resources(template, "AWS::ApiGateway::GatewayResponse", {"ResponseType": response_type}).values()

    body = _render_gateway_template(response["Properties"]["ResponseTemplates"]["application/json"], 'a "b"')

    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] == 'a "b"'
    assert body["error"]["param"] is None


def test_access_log_is_json_with_request_id_tenant_and_authorizer_latency(template: Template) -> None:
    (stage,) = _resources(template, "AWS::ApiGateway::Stage").values()
    fields = json.loads(stage["Properties"]["AccessLogSetting"]["Format"])

    assert fields["requestId"] == "$context.requestId"
    assert fields["tenant"] == "$context.authorizer.tenant"
    assert fields["authorizerLatency"] == "$context.authorizer.latency"
    assert fields["responseLatency"] == "$context.responseLatency"


def test_stage_logs_access_and_throttles(template: Template, stack: StrataStack) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": stack.config.stage,
            "AccessLogSetting": Match.object_like({"Format": Match.any_value()}),
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "HttpMethod": "*",
                            "ResourcePath": "/*",
                            "ThrottlingRateLimit": stack.config.api.throttle_rate_limit,
                            "ThrottlingBurstLimit": stack.config.api.throttle_burst_limit,
                            "DataTraceEnabled": False,
                        }
                    ),
                    # The chat route, each request of which holds a GPU for seconds, gets a tighter limit.
                    Match.object_like(
                        {
                            "HttpMethod": "POST",
                            "ResourcePath": "/~1v1~1chat~1completions",
                            "ThrottlingRateLimit": stack.config.api.throttle_rate_limit / 5,
                        }
                    ),
                ]
            ),
        },
    )


def test_waf_guards_the_stage_with_managed_rules_and_a_rate_rule(template: Template, stack: StrataStack) -> None:
    (acl,) = _resources(template, "AWS::WAFv2::WebACL").values()
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}
    assert acl["Properties"]["Scope"] == "REGIONAL"
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= rules.keys()
    assert rules["RatePerIp"]["Statement"]["RateBasedStatement"]["Limit"] == stack.config.waf.rate_limit_per_5_min
    assert rules["RatePerIp"]["Action"] == {"Block": {}}
    (association,) = _resources(template, "AWS::WAFv2::WebACLAssociation").values()
    assert "DeploymentStage" in json.dumps(association["Properties"]["ResourceArn"])
    (logging,) = _resources(template, "AWS::WAFv2::LoggingConfiguration").values()
    assert logging["Properties"]["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]


# --- search and models ----------------------------------------------------------------------------


def test_search_domain_is_encrypted_https_only_and_signed_requests_only(template: Template) -> None:
    (domain,) = _resources(template, "AWS::OpenSearchService::Domain").values()
    properties = domain["Properties"]

    assert properties["EncryptionAtRestOptions"] == {"Enabled": True}
    assert properties["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert properties["DomainEndpointOptions"] == {
        "EnforceHTTPS": True,
        "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07",
    }
    assert properties["EngineVersion"].startswith("OpenSearch_")
    for statement in properties["AccessPolicies"]["Statement"]:
        assert "*" not in json.dumps(statement["Principal"])


def test_models_use_the_images_the_sdk_resolves_for_the_region(template: Template, stack: StrataStack) -> None:
    config = stack.config
    for model in (config.chat_model, config.embedding_model):
        template.has_resource_properties(
            "AWS::SageMaker::Model",
            {
                "PrimaryContainer": Match.object_like(
                    {
                        "Image": config.image_uri(model),
                        "Environment": Match.object_like({"HF_MODEL_ID": model.model_id}),
                    }
                )
            },
        )
        assert f".dkr.ecr.{config.region}.amazonaws.com/" in config.image_uri(model)


def test_the_chat_model_is_an_inference_component_that_scales_to_zero_and_wakes(
    template: Template, stack: StrataStack
) -> None:
    chat, scaling = stack.models.chat, stack.config.chat_model.scaling
    assert scaling.scale_to_zero  # dev
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "InstanceType": stack.config.chat_model.instance_type,
                        "ManagedInstanceScaling": {
                            "Status": "ENABLED",
                            "MinInstanceCount": 0,
                            "MaxInstanceCount": scaling.max_instances or scaling.max_copies,
                        },
                        "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
                    }
                )
            ],
            "ExecutionRoleArn": Match.any_value(),
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::InferenceComponent",
        {
            "InferenceComponentName": chat.inference_component_name,
            "VariantName": "AllTraffic",
            "Specification": Match.object_like(
                {"ComputeResourceRequirements": Match.object_like({"NumberOfAcceleratorDevicesRequired": 1})}
            ),
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": f"inference-component/{chat.inference_component_name}",
            "ScalableDimension": "sagemaker:inference-component:DesiredCopyCount",
            "MinCapacity": 0,
            "MaxCapacity": scaling.max_copies,
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
                    },
                    "TargetValue": scaling.target_concurrent_requests_per_copy,
                }
            ),
        },
    )
    # The wake: an alarm on NoCapacityInvocationFailures fires a step policy that adds one copy.
    wake = template.find_resources(
        "AWS::ApplicationAutoScaling::ScalingPolicy", {"Properties": {"PolicyType": "StepScaling"}}
    )
    assert len(wake) == 1
    ((wake_id, wake_policy),) = wake.items()
    steps = wake_policy["Properties"]["StepScalingPolicyConfiguration"]
    assert steps["AdjustmentType"] == "ChangeInCapacity"
    assert steps["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "NoCapacityInvocationFailures",
            "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "InferenceComponentName", "Value": chat.inference_component_name}],
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": Match.array_with([{"Ref": wake_id}]),
        },
    )


def test_functions_name_the_inference_component_they_invoke(template: Template, stack: StrataStack) -> None:
    for function in stack.functions.all:
        env = template.to_json()["Resources"][stack.get_logical_id(function.node.default_child)]["Properties"][
            "Environment"
        ]["Variables"]
        assert env["STRATA_CHAT_INFERENCE_COMPONENT"] == stack.models.chat.inference_component_name


def test_the_dev_embedding_model_is_serverless(template: Template, stack: StrataStack) -> None:
    serverless = stack.config.embedding_model.serverless
    assert serverless is not None
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "ServerlessConfig": {
                            "MemorySizeInMB": serverless.memory_mb,
                            "MaxConcurrency": serverless.max_concurrency,
                        },
                        "VariantName": "AllTraffic",
                    }
                )
            ]
        },
    )
    template.has_resource_properties("AWS::SageMaker::Endpoint", {"EndpointName": stack.models.embedding.endpoint_name})


# --- functions ------------------------------------------------------------------------------------


def test_ingest_reads_the_queue_reporting_batch_item_failures(template: Template, stack: StrataStack) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [_logical_id(stack, stack.storage.queue), "Arn"]},
            "FunctionName": {"Ref": _logical_id(stack, stack.functions.ingest)},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            # The one definition the local poller reads too.
            "BatchSize": RESOURCES.ingest_source.batch_size,
            "ScalingConfig": {"MaximumConcurrency": RESOURCES.ingest_source.max_concurrency},
        },
    )
    (ingest,) = [f for lid, f in _functions(template).items() if lid == _logical_id(stack, stack.functions.ingest)]
    assert ingest["Timeout"] == RESOURCES.ingest_source.function_timeout_s
    assert ingest["Timeout"] <= RESOURCES.ingest_queue.visibility_timeout_s


def test_every_strata_env_var_is_a_settings_field(template: Template, stack: StrataStack) -> None:
    functions = _functions(template)
    assert len(functions) == len(stack.functions.all)
    for logical_id, function in functions.items():
        names = {name for name in function["Environment"]["Variables"] if name.startswith(ENV_PREFIX)}
        unknown = {name for name in names if name.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields}
        assert not unknown, f"{logical_id} sets variables Settings ignores: {sorted(unknown)}"
        assert names >= {f"{ENV_PREFIX}{field.upper()}" for field in _RESOURCE_FIELDS}, logical_id


_RESOURCE_FIELDS = (
    "documents_bucket",
    "ingest_queue",
    "keys_table",
    "documents_table",
    "chat_endpoint",
    "embedding_endpoint",
    "vector_store",
    "opensearch_endpoint",
)


def test_functions_point_at_the_cloud_resources(template: Template, stack: StrataStack) -> None:
    for function in _functions(template).values():
        env = function["Environment"]["Variables"]
        assert env["STRATA_VECTOR_STORE"] == "opensearch"
        assert env["STRATA_CHAT_ENDPOINT"] == stack.models.chat.endpoint_name
        assert env["STRATA_EMBEDDING_ENDPOINT"] == stack.models.embedding.endpoint_name
        assert env["STRATA_KEYS_TABLE"] == {"Ref": _logical_id(stack, stack.tables.table(RESOURCES.keys_table))}
        assert "STRATA_AWS_ENDPOINT_URL" not in env


def test_no_function_gets_the_key_pepper_in_its_environment(template: Template) -> None:
    for logical_id, function in _functions(template).items():
        assert "STRATA_KEY_PEPPER" not in function["Environment"]["Variables"], logical_id
    # Not even as a dynamic reference, which CloudFormation would resolve into the configuration.
    assert "resolve:secretsmanager" not in json.dumps(template.to_json())


def test_authorizer_and_api_are_named_the_key_pepper_secret_which_only_they_may_read(
    template: Template, stack: StrataStack
) -> None:
    secret = {"Ref": stack.get_logical_id(stack.key_pepper.node.default_child)}
    functions = _functions(template)
    readers = {_logical_id(stack, f) for f in (stack.functions.authorizer, stack.functions.api)}
    for logical_id, function in functions.items():
        env = function["Environment"]["Variables"]
        if logical_id in readers:
            assert env["STRATA_KEY_PEPPER_SECRET"] == secret, logical_id
        else:
            assert "STRATA_KEY_PEPPER_SECRET" not in env, logical_id

    granted: set[str] = set()
    for policy in _resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if any(a.startswith("secretsmanager:") for a in _as_list(statement["Action"])):
                assert "secretsmanager:GetSecretValue" in statement["Action"]
                assert statement["Resource"] == secret
                granted.update(role["Ref"] for role in policy["Properties"]["Roles"])
    assert granted == {_logical_id(stack, f.role) for f in (stack.functions.authorizer, stack.functions.api)}


def test_every_function_is_named_every_table(template: Template, stack: StrataStack) -> None:
    for logical_id, function in _functions(template).items():
        env = function["Environment"]["Variables"]
        for field in fields(RESOURCES):
            spec = getattr(RESOURCES, field.name)
            if isinstance(spec, TableSpec):
                variable = f"{ENV_PREFIX}{field.name.upper()}"
                assert env[variable] == {"Ref": _logical_id(stack, stack.tables.table(spec))}, (logical_id, variable)


def test_powertools_and_the_request_log_share_one_metrics_namespace(template: Template) -> None:
    assert Settings.model_fields["metrics_namespace"].default == METRICS_NAMESPACE
    for logical_id, function in _functions(template).items():
        env = function["Environment"]["Variables"]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE, logical_id
        assert env["STRATA_METRICS_NAMESPACE"] == METRICS_NAMESPACE, logical_id


def test_jwt_sign_in_is_off_by_default(template: Template) -> None:
    for logical_id, function in _functions(template).items():
        jwt = [name for name in function["Environment"]["Variables"] if name.startswith("STRATA_JWT_")]
        assert jwt == [], logical_id


def test_chat_function_runs_uvicorn_under_the_web_adapter_in_stream_mode(
    template: Template, stack: StrataStack
) -> None:
    chat = _functions(template)[_logical_id(stack, stack.functions.chat)]
    architecture = stack.config.architecture
    layer_name = {"arm64": "LambdaAdapterLayerArm64", "x86_64": "LambdaAdapterLayerX86"}[architecture]

    assert chat["Handler"] == "functions/chat/run.sh"
    assert chat["Runtime"] == "python3.12"
    assert chat["Architectures"] == [architecture]
    assert {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
        "AWS_LWA_INVOKE_MODE": "response_stream",
        "PORT": "8000",
        "PYTHONPATH": "/opt/python:/var/task:/var/runtime",  # uvicorn and strata live in the layer
    }.items() <= chat["Environment"]["Variables"].items()
    assert (
        f"arn:aws:lambda:{stack.config.region}:753240598075:layer:{layer_name}:{stack.config.lwa_layer_version}"
        in chat["Layers"]
    )


def test_all_functions_share_runtime_architecture_and_layer(template: Template, stack: StrataStack) -> None:
    layer_ref = {"Ref": stack.get_logical_id(stack.functions.layer.node.default_child)}
    for function in _functions(template).values():
        assert function["Runtime"] == "python3.12"
        assert function["Architectures"] == [stack.config.architecture]
        assert function["Layers"][0] == layer_ref
    template.has_resource_properties(
        "AWS::Lambda::LayerVersion", {"CompatibleArchitectures": [stack.config.architecture]}
    )


def test_chat_may_invoke_and_stream_from_both_endpoints_only(template: Template, stack: StrataStack) -> None:
    role = _logical_id(stack, stack.functions.chat.role)
    statements = _policy_statements(template, role)
    sagemaker = [st for st in statements if any(a.startswith("sagemaker:") for a in st["Action"])]

    assert sagemaker == [
        {
            "Action": ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
            "Effect": "Allow",
            "Resource": [
                {"Ref": stack.get_logical_id(stack.models.chat.endpoint)},
                {"Ref": stack.get_logical_id(stack.models.embedding.endpoint)},
            ],
        }
    ]


def test_ingest_may_invoke_only_the_embedding_endpoint(template: Template, stack: StrataStack) -> None:
    statements = _policy_statements(template, _logical_id(stack, stack.functions.ingest.role))
    resources = [st["Resource"] for st in statements if "sagemaker:InvokeEndpoint" in st["Action"]]
    assert resources == [{"Ref": stack.get_logical_id(stack.models.embedding.endpoint)}]


def test_authorizer_may_only_read_the_keys_and_tenants_tables(template: Template, stack: StrataStack) -> None:
    statements = _statements_of(template, stack, stack.functions.authorizer)
    grants = _table_grants(statements, stack)

    assert set(grants) == {RESOURCES.keys_table.name, RESOURCES.tenants_table.name}
    for table, actions in grants.items():
        # A key and its tenant's limits may be read in one BatchGetItem.
        assert _reads_only(actions), (table, sorted(actions))
        assert "dynamodb:BatchGetItem" in actions, table
    actions = {action for st in statements for action in _as_list(st["Action"])}
    assert not {a for a in actions if a.startswith(("s3:", "sagemaker:", "es:", "bedrock:", "ssm:"))}


# --- synthesis ------------------------------------------------------------------------------------


def test_cdk_nag_reports_no_unsuppressed_errors(synthesized: Synthesized) -> None:
    annotations: Annotations = synthesized.annotations
    errors = annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    assert [(e.id, e.entry.data) for e in errors] == []


def test_bundling_is_skipped_so_assets_point_at_their_sources(synthesized: Synthesized) -> None:
    manifest = json.loads((synthesized.outdir / f"{synthesized.stack.artifact_id}.assets.json").read_text())
    zipped = {asset["source"]["path"] for asset in manifest["files"].values() if asset["source"]["packaging"] == "zip"}
    # Bundled assets (the layer, the function code) would be staged as asset.<hash> folders; the
    # others (the page, CDK's own handlers) are copied as they are.
    assert {str(PROJECT_ROOT), str(PROJECT_ROOT / "functions")} <= zipped
    assert all(path.startswith("asset.") for path in zipped - {str(PROJECT_ROOT), str(PROJECT_ROOT / "functions")})


def test_api_function_manages_keys_tenants_limits_prompts_and_feedback(template: Template, stack: StrataStack) -> None:
    grants = _table_grants(_statements_of(template, stack, stack.functions.api), stack)

    managed = {
        RESOURCES.keys_table.name,
        RESOURCES.tenants_table.name,
        RESOURCES.rate_limits_table.name,
        RESOURCES.prompts_table.name,
        RESOURCES.feedback_table.name,
    }
    assert set(grants) == managed | {RESOURCES.documents_table.name, RESOURCES.breakers_table.name}
    for table in managed:
        assert grants[table] >= _READ | _WRITE, table
    # The registry is ingest's: the api only marks a record "deleting" when its file is deleted.
    documents = grants[RESOURCES.documents_table.name]
    assert documents >= _READ
    assert documents & _WRITE == {"dynamodb:UpdateItem"}
    assert _reads_only(grants[RESOURCES.breakers_table.name])


def test_api_function_may_only_put_and_delete_objects_under_the_tenant_prefix(
    template: Template, stack: StrataStack
) -> None:
    statements = _statements_of(template, stack, stack.functions.api)
    s3 = [st for st in statements if any(a.startswith("s3:") for a in _as_list(st["Action"]))]

    assert len(s3) == 1
    assert sorted(_as_list(s3[0]["Action"])) == ["s3:DeleteObject", "s3:PutObject"]
    assert s3[0]["Resource"] == {
        "Fn::Join": [
            "",
            [
                {"Fn::GetAtt": [_logical_id(stack, stack.storage.bucket), "Arn"]},
                f"/{RESOURCES.documents_bucket.prefix}*",
            ],
        ]
    }


def test_chat_admits_through_the_rate_limits_table_and_only_reads_prompts(
    template: Template, stack: StrataStack
) -> None:
    grants = _table_grants(_statements_of(template, stack, stack.functions.chat), stack)

    assert set(grants) == {
        RESOURCES.rate_limits_table.name,
        RESOURCES.prompts_table.name,
        RESOURCES.breakers_table.name,
        RESOURCES.response_cache_table.name,
    }
    assert grants[RESOURCES.rate_limits_table.name] >= _READ | _WRITE
    assert _reads_only(grants[RESOURCES.prompts_table.name])


def test_chat_shares_breakers_and_response_cache_through_their_tables(template: Template, stack: StrataStack) -> None:
    chat = _policy_statements(template, _logical_id(stack, stack.functions.chat.role))
    api = _policy_statements(template, _logical_id(stack, stack.functions.api.role))

    def tables_with(statements: list[dict[str, Any]], action: str) -> list[str]:
        return sorted(
            resource["Fn::GetAtt"][0]
            for st in statements
            if action in st["Action"]
            for resource in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
            if isinstance(resource, dict) and "Fn::GetAtt" in resource
        )

    breakers = _logical_id(stack, stack.tables.table(RESOURCES.breakers_table))
    cache = _logical_id(stack, stack.tables.table(RESOURCES.response_cache_table))
    assert {breakers, cache} <= set(tables_with(chat, "dynamodb:PutItem"))
    assert breakers in tables_with(api, "dynamodb:GetItem")  # /healthz
    assert breakers not in tables_with(api, "dynamodb:PutItem")
    for function in _functions(template).values():
        env = function["Environment"]["Variables"]
        assert env["STRATA_BREAKERS_TABLE"] == {"Ref": breakers}
        assert env["STRATA_RESPONSE_CACHE_TABLE"] == {"Ref": cache}
        assert env["STRATA_CHAT_CONTEXT_WINDOW"] == str(stack.config.chat_context_window)


_DDB_READ = {
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:Query",
    "dynamodb:Scan",
}
_DDB_WRITE = {"dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
_ES = {f"es:ESHttp{verb}" for verb in ("Delete", "Get", "Head", "Patch", "Post", "Put")}
_INVOKE = {"sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"}
_SECRET = {"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}
_XRAY = {"xray:PutTelemetryRecords", "xray:PutTraceSegments"}


def test_each_function_gets_exactly_the_actions_it_uses(template: Template, stack: StrataStack) -> None:
    """The whole action set per function: a grant added anywhere shows up here, and must be meant.
    (Which resources each action reaches is asserted per grant in the tests above.)"""
    functions = stack.functions
    expected = {
        functions.authorizer: _DDB_READ | _SECRET | _XRAY,
        functions.api: _DDB_READ | _DDB_WRITE | _ES | _INVOKE | _SECRET | _XRAY | {"s3:PutObject", "s3:DeleteObject"},
        functions.chat: _DDB_READ | _DDB_WRITE | _ES | _INVOKE | _XRAY | {"s3:PutObject"},
        functions.ingest: _DDB_READ
        | _DDB_WRITE
        | _ES
        | _INVOKE
        | _XRAY
        | {"s3:GetObject", "s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:ListBucket", "s3:PutObject"}
        | {"s3:DeleteObject"}
        | {
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ReceiveMessage",
            "sqs:SendMessage",
        },
        # Exactly the index and pipeline PUTs (and the role mappings) of the deploy-time bootstrap.
        functions.search_bootstrap: {"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPut"} | _XRAY,
    }
    assert set(expected) == set(functions.all)
    for function, actions in expected.items():
        granted = {action for st in _statements_of(template, stack, function) for action in _as_list(st["Action"])}
        assert granted == actions, (function.node.id, sorted(granted ^ actions))
