"""The synthesized StrataStack template: what each construct promises, read back from CloudFormation."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk.assertions import Annotations, Match, Template

from infra_cdk.stack import PROJECT_ROOT, StrataStack
from strata.config import RESOURCES, Settings
from strata.config.settings import ENV_PREFIX
from strata.config.routes import UNAUTHORIZED_BODY

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


def _render_gateway_template(mapping_template: str, message: str) -> dict[str, Any]:
    """What API Gateway sends for ``mapping_template`` (``messageString`` is the quoted message)."""
    return json.loads(mapping_template.replace("$context.error.messageString", json.dumps(message)))


# --- documents: bucket → queue → DLQ -------------------------------------------------------------


def test_bucket_notifies_ingest_queue_of_created_and_removed_objects_under_tenant_prefix(
    template: Template, stack: StrataStack
) -> None:
    queue_arn = {"Fn::GetAtt": [_logical_id(stack, stack.documents.queue), "Arn"]}
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
                "deadLetterTargetArn": {"Fn::GetAtt": [_logical_id(stack, stack.documents.dlq), "Arn"]},
            },
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"MessageRetentionPeriod": spec.dlq_retention_days * DAY_S, "RedrivePolicy": Match.absent()},
    )


def test_queues_and_buckets_refuse_plain_http(template: Template) -> None:
    deny_insecure = {"Bool": {"aws:SecureTransport": "false"}}
    for policy_type in ("AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"):
        policies = _resources(template, policy_type)
        assert len(policies) == 2, policy_type
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
    key_schema = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    attributes = [{"AttributeName": spec.partition_key, "AttributeType": "S"}]
    if spec.sort_key:
        key_schema.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": spec.sort_key, "AttributeType": "S"})
    ttl = {"AttributeName": spec.ttl_attribute, "Enabled": True} if spec.ttl_attribute else Match.absent()

    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": key_schema,
            "AttributeDefinitions": attributes,
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "TimeToLiveSpecification": ttl,
        },
    )


def test_one_table_per_spec(template: Template) -> None:
    assert len(_resources(template, "AWS::DynamoDB::Table")) == len(RESOURCES.tables)


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
    assert set(methods) >= {
        "POST /v1/chat/completions",
        "GET /v1/models",
        "POST /v1/embeddings",
        "GET /v1/documents",
        "GET /v1/documents/{id}",
        "GET /healthz",
    }
    resources = _resources(template, "AWS::ApiGateway::Method")
    for name, method in methods.items():
        properties = resources[stack.get_logical_id(method.node.default_child)]["Properties"]
        if name == "GET /healthz":
            assert properties["AuthorizationType"] == "NONE"
            assert "AuthorizerId" not in properties
        else:
            assert properties["AuthorizationType"] == "CUSTOM", name
            assert properties["AuthorizerId"] == authorizer_ref, name


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


def test_stage_logs_access_and_throttles(template: Template, stack: StrataStack) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": stack.config.stage,
            "AccessLogSetting": Match.object_like({"Format": Match.string_like_regexp(r"\$context\.requestId")}),
            "MethodSettings": [
                Match.object_like(
                    {
                        "ThrottlingRateLimit": stack.config.api.throttle_rate_limit,
                        "ThrottlingBurstLimit": stack.config.api.throttle_burst_limit,
                        "DataTraceEnabled": False,
                    }
                )
            ],
        },
    )


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


def test_model_endpoints_use_configured_images_and_instance_types(template: Template, stack: StrataStack) -> None:
    config = stack.config
    for model, endpoint in (
        (config.chat_model, stack.models.chat),
        (config.embedding_model, stack.models.embedding),
    ):
        template.has_resource_properties(
            "AWS::SageMaker::Model",
            {
                "PrimaryContainer": Match.object_like(
                    {"Image": model.image_uri, "Environment": Match.object_like({"HF_MODEL_ID": model.model_id})}
                )
            },
        )
        template.has_resource_properties(
            "AWS::SageMaker::EndpointConfig",
            {
                "ProductionVariants": [
                    Match.object_like(
                        {
                            "InstanceType": model.instance_type,
                            "InitialInstanceCount": model.initial_instance_count,
                            "VariantName": "AllTraffic",
                        }
                    )
                ]
            },
        )
        template.has_resource_properties("AWS::SageMaker::Endpoint", {"EndpointName": endpoint.endpoint_name})


# --- functions ------------------------------------------------------------------------------------


def test_ingest_reads_the_queue_reporting_batch_item_failures(template: Template, stack: StrataStack) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [_logical_id(stack, stack.documents.queue), "Arn"]},
            "FunctionName": {"Ref": _logical_id(stack, stack.functions.ingest)},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )
    (ingest,) = [f for lid, f in _functions(template).items() if lid == _logical_id(stack, stack.functions.ingest)]
    assert ingest["Timeout"] <= RESOURCES.ingest_queue.visibility_timeout_s


def test_every_strata_env_var_is_a_settings_field(template: Template) -> None:
    functions = _functions(template)
    assert len(functions) == 4
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


def test_only_the_authorizer_gets_the_key_pepper_as_a_secret_reference(template: Template, stack: StrataStack) -> None:
    functions = _functions(template)
    authorizer = functions[_logical_id(stack, stack.functions.authorizer)]
    pepper = json.dumps(authorizer["Environment"]["Variables"]["STRATA_KEY_PEPPER"])
    assert "{{resolve:secretsmanager:" in pepper
    others = [f for lid, f in functions.items() if lid != _logical_id(stack, stack.functions.authorizer)]
    assert all("STRATA_KEY_PEPPER" not in f["Environment"]["Variables"] for f in others)


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


def test_authorizer_may_only_read_the_keys_table(template: Template, stack: StrataStack) -> None:
    statements = _policy_statements(template, _logical_id(stack, stack.functions.authorizer.role))
    actions = {action for st in statements for action in st["Action"]}
    assert actions, "the authorizer has no permissions"
    assert not {
        a
        for a in actions
        if a.startswith("dynamodb:")
        and not a.startswith(
            (
                "dynamodb:BatchGet",
                "dynamodb:Get",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:Describe",
                "dynamodb:ConditionCheck",
            )
        )
    }
    assert not {a for a in actions if a.startswith(("s3:", "sagemaker:", "es:"))}


# --- synthesis ------------------------------------------------------------------------------------


def test_cdk_nag_reports_no_unsuppressed_errors(synthesized: Synthesized) -> None:
    annotations: Annotations = synthesized.annotations
    errors = annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    assert [(e.id, e.entry.data) for e in errors] == []


def test_bundling_is_skipped_so_assets_point_at_their_sources(synthesized: Synthesized) -> None:
    manifest = json.loads((synthesized.outdir / f"{synthesized.stack.artifact_id}.assets.json").read_text())
    zipped = {asset["source"]["path"] for asset in manifest["files"].values() if asset["source"]["packaging"] == "zip"}
    # Bundled assets would be staged as asset.<hash> folders inside the cloud assembly.
    assert zipped == {str(PROJECT_ROOT), str(PROJECT_ROOT / "functions")}


def test_api_function_reads_the_registry_but_not_the_bucket(template: Template, stack: StrataStack) -> None:
    statements = _policy_statements(template, _logical_id(stack, stack.functions.api.role))
    actions = {action for st in statements for action in st["Action"]}
    assert "dynamodb:Query" in actions
    assert not {a for a in actions if a.startswith("s3:") or a in ("dynamodb:PutItem", "dynamodb:DeleteItem")}


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
