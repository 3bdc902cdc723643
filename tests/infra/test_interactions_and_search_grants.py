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
    bucket = stack.get_logical_id(stack.documents.bucket.node.default_child)

    assert len(s3) == 1
    assert _actions(s3[0]) == ["s3:PutObject"]
    assert s3[0]["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{RESOURCES.documents_bucket.interactions_prefix}*"]]
    }


def test_the_interaction_prefix_is_outside_the_notified_tenant_prefix() -> None:
    spec = RESOURCES.documents_bucket
    assert not spec.interactions_prefix.startswith(spec.prefix)
    assert not spec.prefix.startswith(spec.interactions_prefix)


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
