"""The interaction log and POST /v1/search in the template: chat may only put objects under the
log's prefix (outside the tenant prefix, so no notification reaches ingestion); the api function
may read the chunk index that search serves."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from infra_cdk.stack import StrataStack
from strata.config import RESOURCES


def _statements(template: Template, stack: StrataStack, function: Any) -> list[dict[str, Any]]:
    role = stack.get_logical_id(function.role.node.default_child)
    found: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_chat_may_only_put_objects_under_the_interaction_prefix(template: Template, stack: StrataStack) -> None:
    s3 = [
        st
        for st in _statements(template, stack, stack.functions.chat)
        if any(a.startswith("s3:") for a in _actions(st))
    ]
    bucket = stack.get_logical_id(stack.storage.interactions_bucket.node.default_child)

    assert len(s3) == 1
    assert _actions(s3[0]) == ["s3:PutObject"]
    assert s3[0]["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{RESOURCES.interactions_bucket.prefix}*"]]
    }


def test_the_interaction_log_has_its_own_bucket_whose_records_expire(template: Template, stack: StrataStack) -> None:
    bucket = template.to_json()["Resources"][stack.get_logical_id(stack.storage.interactions_bucket.node.default_child)]
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]

    assert {
        "Prefix": RESOURCES.interactions_bucket.prefix,
        "ExpirationInDays": stack.config.interactions_retention_days,
    } == {k: rules[0][k] for k in ("Prefix", "ExpirationInDays")}
    assert bucket["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert "BucketEncryption" in bucket["Properties"]
    env = next(
        r["Properties"]["Environment"]["Variables"]
        for r in template.find_resources("AWS::Lambda::Function").values()
        if "STRATA_INTERACTIONS_BUCKET" in r["Properties"].get("Environment", {}).get("Variables", {})
    )
    assert env["STRATA_INTERACTIONS_BUCKET"] == {
        "Ref": stack.get_logical_id(stack.storage.interactions_bucket.node.default_child)
    }


def test_api_may_read_the_chunk_index_for_search_as_chat_does(template: Template, stack: StrataStack) -> None:
    def search_grants(function: Any) -> list[tuple[tuple[str, ...], str]]:
        return sorted(
            (tuple(sorted(_actions(st))), str(st["Resource"]))
            for st in _statements(template, stack, function)
            if any(a.startswith("es:") for a in _actions(st))
        )

    api, chat = search_grants(stack.functions.api), search_grants(stack.functions.chat)
    assert api
    assert api == chat
