"""What the deployed chat page may reach in cdk.json's stack: its API and the documents bucket, to
which it posts the presigned uploads the API grants (the bucket's CORS rule admits the page's origin
only). Sign-in, which adds the issuer, is set in the variant of tests/infra/test_variants.py.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from aws_cdk.assertions import Template

from infra_cdk.constructs.storage import UPLOAD_CORS_RESOURCE_TYPE, presigned_post_origin
from infra_cdk.stack import StrataStack
from strata.config import Settings
from strata.documents import build_document_uploads
from tests.infra.pages import csp_directives, page_config, rendered

URL_SUFFIX = "${AWS::URLSuffix}"


def _logical_id(stack: StrataStack, construct: Any) -> str:
    return stack.get_logical_id(construct.node.default_child)


def _sdk_calls(template: Template) -> dict[str, Any]:
    """The SDK calls of the custom resource behind ``stack.storage.upload_cors``, by event."""
    (resource,) = template.find_resources(UPLOAD_CORS_RESOURCE_TYPE).values()
    properties = resource["Properties"]
    return {event: json.loads(rendered(properties[event])) for event in ("Create", "Update") if event in properties}


def test_the_page_may_connect_to_its_api_and_to_the_documents_bucket_for_uploads(
    stack: StrataStack, template: Template
) -> None:
    api = _logical_id(stack, stack.api.rest_api)
    bucket = _logical_id(stack, stack.storage.bucket)
    region = stack.config.region
    assert csp_directives(template)["connect-src"] == [
        "'self'",
        f"https://${{{api}}}.execute-api.{region}.{URL_SUFFIX}",
        presigned_post_origin(f"${{{bucket}}}", region, URL_SUFFIX),
    ]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_the_upload_origin_is_where_the_api_function_presigns_posts(
    region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    bucket = "strata-dev-storagedocumentscd3fce94-0a1b2c3d4e5f"
    settings = Settings(aws_region=region, documents_bucket=bucket)
    url = build_document_uploads(settings).presign("acme", "notes/q3.pdf").upload.url  # signed offline
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == presigned_post_origin(bucket, region, "amazonaws.com")
    assert parts.path == "/", "virtual-hosted: the bucket is in the host, not the path"


def test_the_documents_bucket_admits_posts_from_the_pages_origin_only(stack: StrataStack, template: Template) -> None:
    bucket = _logical_id(stack, stack.storage.bucket)
    distribution = _logical_id(stack, stack.frontend.distribution)
    calls = _sdk_calls(template)
    assert calls["Create"] == calls["Update"]
    assert calls["Create"] == {
        "service": "S3",
        "action": "putBucketCors",
        "parameters": {
            "Bucket": f"${{{bucket}}}",
            "CORSConfiguration": {
                "CORSRules": [
                    {
                        "AllowedMethods": ["POST"],
                        "AllowedOrigins": [f"https://${{{distribution}.DomainName}}"],
                        "MaxAgeSeconds": 3600,
                    }
                ]
            },
        },
        "physicalResourceId": {"id": f"${{{bucket}}}"},
    }
    # Not a property of the bucket: the page's CSP names the bucket, so CloudFormation would wait
    # for each of the bucket and the distribution before the other.
    properties = template.to_json()["Resources"][bucket]["Properties"]
    assert "CorsConfiguration" not in properties


def test_the_cors_rule_is_put_with_one_action_on_the_documents_bucket_only(
    stack: StrataStack, template: Template
) -> None:
    assert stack.storage.upload_cors is not None
    policy_id = stack.get_logical_id(
        stack.storage.upload_cors.node.find_child("CustomResourcePolicy").node.default_child
    )
    (statement,) = template.to_json()["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"]
    bucket = _logical_id(stack, stack.storage.bucket)
    assert (statement["Effect"], statement["Action"]) == ("Allow", "s3:PutBucketCORS")
    assert statement["Resource"] == {"Fn::GetAtt": [bucket, "Arn"]}


def test_without_a_sign_in_origin_config_json_names_only_the_api(stack: StrataStack, template: Template) -> None:
    api = _logical_id(stack, stack.api.rest_api)
    stage = _logical_id(stack, stack.api.rest_api.deployment_stage)
    assert page_config(stack, template) == {
        "apiBaseUrl": f"https://${{{api}}}.execute-api.{stack.config.region}.{URL_SUFFIX}/${{{stage}}}/v1"
    }
    assert len(csp_directives(template)["connect-src"]) == 3, "the page, its API and the upload origin"
