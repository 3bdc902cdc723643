"""Configuration switches that the default cdk.json does not exercise, synthesized once."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match, Template

from infra_cdk.app import SKIP_BUNDLING, build_app, read_cdk_json_context
from infra_cdk.config import CONTEXT_KEY
from infra_cdk.stack import StrataStack
from strata.config.frontend import SIGN_IN_SCOPES
from tests.infra.pages import csp_directives, page_config

MODEL_DATA = "s3://strata-model-artifacts/chat/model.tar.gz"
JWT_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123"
JWT_AUDIENCE = "3n4b5urk1ft4fl3mg5e62d9ado"
SIGN_IN_ORIGIN = "https://strata-ha.auth.us-east-1.amazoncognito.com"


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> tuple[StrataStack, Template]:
    context = read_cdk_json_context()
    strata: dict[str, Any] = copy.deepcopy(context[CONTEXT_KEY])
    strata.update(stage="ha", architecture="x86_64", retain_data=False)
    strata["environments"]["ha"] = {
        "search": {"data_nodes": 2},
        "embedding_model": {"instance_type": "ml.c6i.large"},
        "vpc": {"enabled": True, "max_azs": 2, "nat_gateways": 1},
        "waf": {"enabled": False},
    }
    strata["chat_model"].update(model_data_url=MODEL_DATA, model_id="/opt/ml/model")
    strata["models_parameter"] = "/strata/ha/models"
    strata.update(
        jwt_issuer=JWT_ISSUER,
        jwt_audience=JWT_AUDIENCE,
        jwt_tenant_claim="custom:org",
        jwt_sign_in_origin=SIGN_IN_ORIGIN,
    )
    context[CONTEXT_KEY] = strata
    _, stack = build_app(
        context=context, post_cli_context=SKIP_BUNDLING, outdir=str(tmp_path_factory.mktemp("cdk.out"))
    )
    return stack, Template.from_stack(stack)


def test_x86_functions_get_the_x86_web_adapter_layer(variant: tuple[StrataStack, Template]) -> None:
    stack, template = variant
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "functions/chat/run.sh",
            "Architectures": ["x86_64"],
            "Layers": Match.array_with(
                [f"arn:aws:lambda:{stack.config.region}:753240598075:layer:LambdaAdapterLayerX86:30"]
            ),
        },
    )


def test_two_data_nodes_spread_over_two_zones(variant: tuple[StrataStack, Template]) -> None:
    _, template = variant
    template.has_resource_properties(
        "AWS::OpenSearchService::Domain",
        {
            "DomainName": "strata-ha-search",
            "ClusterConfig": Match.object_like(
                {"InstanceCount": 2, "ZoneAwarenessEnabled": True, "ZoneAwarenessConfig": {"AvailabilityZoneCount": 2}}
            ),
        },
    )


def test_model_artifacts_are_readable_by_the_execution_role(variant: tuple[StrataStack, Template]) -> None:
    _, template = variant
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {"PrimaryContainer": Match.object_like({"ModelDataUrl": MODEL_DATA})},
    )
    readers = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "strata-model-artifacts/chat/model.tar.gz" in json.dumps(statement["Resource"])
    ]
    assert len(readers) == 1
    assert "s3:GetObject*" in readers[0]["Action"]


def test_disposable_stage_deletes_its_data(variant: tuple[StrataStack, Template]) -> None:
    _, template = variant
    for table in template.find_resources("AWS::DynamoDB::Table").values():
        assert table["DeletionPolicy"] == "Delete"
        assert table["Properties"]["DeletionProtectionEnabled"] is False


def test_in_a_vpc_the_functions_run_in_private_subnets_with_free_gateway_endpoints(
    variant: tuple[StrataStack, Template],
) -> None:
    stack, template = variant
    assert stack.network is not None
    for function in stack.functions.all:
        props = template.to_json()["Resources"][stack.get_logical_id(function.node.default_child)]["Properties"]
        assert props["VpcConfig"]["SubnetIds"], function.node.id
    endpoints = template.find_resources("AWS::EC2::VPCEndpoint")
    services = sorted(json.dumps(e["Properties"]["ServiceName"]) for e in endpoints.values())
    assert len(services) == 2 and any("s3" in s for s in services) and any("dynamodb" in s for s in services)
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.resource_count_is("AWS::EC2::FlowLog", 1)


def test_waf_can_be_switched_off_per_stage(variant: tuple[StrataStack, Template]) -> None:
    stack, template = variant
    assert stack.api.web_acl is None
    template.resource_count_is("AWS::WAFv2::WebACL", 0)


def test_an_embedding_instance_instead_of_serverless(variant: tuple[StrataStack, Template]) -> None:
    _, template = variant
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {"ProductionVariants": [Match.object_like({"InstanceType": "ml.c6i.large", "InitialInstanceCount": 1})]},
    )


def test_variant_passes_cdk_nag(variant: tuple[StrataStack, Template]) -> None:
    stack, _ = variant
    errors = Annotations.from_stack(stack).find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    assert [(e.id, e.entry.data) for e in errors] == []


def test_a_registry_in_ssm_is_named_to_chat_and_api_which_may_read_it(variant: tuple[StrataStack, Template]) -> None:
    stack, template = variant
    for function in (stack.functions.chat, stack.functions.api):
        env = template.to_json()["Resources"][stack.get_logical_id(function.node.default_child)]["Properties"]
        assert env["Environment"]["Variables"]["STRATA_MODELS_PARAMETER"] == "/strata/ha/models"
        assert "STRATA_MODELS" not in env["Environment"]["Variables"]
    policies = template.find_resources("AWS::IAM::Policy")
    readers = [
        policy["Properties"]["Roles"]
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "ssm:GetParameter" in statement["Action"] and "/strata/ha/models" in json.dumps(statement["Resource"])
    ]
    roles = {role["Ref"] for group in readers for role in group}
    assert roles == {
        stack.get_logical_id(f.role.node.default_child) for f in (stack.functions.chat, stack.functions.api)
    }


def test_jwt_settings_reach_the_authorizer_only(variant: tuple[StrataStack, Template]) -> None:
    stack, template = variant
    resources = template.to_json()["Resources"]
    jwt = {
        "STRATA_JWT_ISSUER": JWT_ISSUER,
        "STRATA_JWT_AUDIENCE": JWT_AUDIENCE,
        "STRATA_JWT_TENANT_CLAIM": "custom:org",
    }
    for function in stack.functions.all:
        env = resources[stack.get_logical_id(function.node.default_child)]["Properties"]["Environment"]["Variables"]
        if function is stack.functions.authorizer:
            assert jwt.items() <= env.items()
        else:
            assert not {name for name in env if name.startswith("STRATA_JWT_")}, function.node.id


def test_with_a_sign_in_origin_the_page_offers_sign_in_with_the_issuer_and_app_client(
    variant: tuple[StrataStack, Template],
) -> None:
    stack, template = variant
    assert page_config(stack, template)["signIn"] == {
        "issuer": JWT_ISSUER,
        "clientId": JWT_AUDIENCE,
        "scopes": SIGN_IN_SCOPES,
    }


def test_with_sign_in_the_page_may_connect_to_the_issuer_and_its_sign_in_pages(
    variant: tuple[StrataStack, Template],
) -> None:
    _, template = variant
    connect = csp_directives(template)["connect-src"]
    assert connect[-2:] == ["https://cognito-idp.us-east-1.amazonaws.com", SIGN_IN_ORIGIN]
    assert len(connect) == 5, "the page, its API, the upload origin, the issuer and the sign-in pages"


@pytest.fixture(scope="module")
def registry_variant(tmp_path_factory: pytest.TempPathFactory) -> tuple[StrataStack, Template]:
    context = read_cdk_json_context()
    strata: dict[str, Any] = copy.deepcopy(context[CONTEXT_KEY])
    strata["models"] = {
        "default": {"provider": "sagemaker", "endpoint": "strata-dev-chat", "fallbacks": ["claude", "other"]},
        "claude": {"provider": "bedrock", "model": "us.anthropic.claude-3-5-haiku-20241022-v1:0"},
        "other": {"provider": "sagemaker", "endpoint": "Team-Endpoint"},
    }
    context[CONTEXT_KEY] = strata
    _, stack = build_app(
        context=context, post_cli_context=SKIP_BUNDLING, outdir=str(tmp_path_factory.mktemp("cdk.out"))
    )
    return stack, Template.from_stack(stack)


def test_chat_may_call_the_registrys_other_targets(registry_variant: tuple[StrataStack, Template]) -> None:
    stack, template = registry_variant
    role = {"Ref": stack.get_logical_id(stack.functions.chat.role.node.default_child)}
    statements = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if role in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    rendered = json.dumps(statements)
    assert "endpoint/team-endpoint" in rendered
    bedrock = [s for s in statements if "bedrock:InvokeModelWithResponseStream" in s["Action"]]
    assert len(bedrock) == 1
    assert "inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0" in json.dumps(bedrock[0]["Resource"])
    assert "foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0" in json.dumps(bedrock[0]["Resource"])
    env = template.to_json()["Resources"][stack.get_logical_id(stack.functions.chat.node.default_child)]
    assert json.loads(env["Properties"]["Environment"]["Variables"]["STRATA_MODELS"])["models"]["claude"][
        "provider"
    ] == ("bedrock")


def test_the_registry_variant_passes_cdk_nag(registry_variant: tuple[StrataStack, Template]) -> None:
    stack, _ = registry_variant
    errors = Annotations.from_stack(stack).find_error("*", Match.string_like_regexp("AwsSolutions-.*"))
    assert [(e.id, e.entry.data) for e in errors] == []
