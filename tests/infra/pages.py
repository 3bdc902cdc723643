"""What a synthesized template hands the chat page, made readable: its CSP and its ``config.json``.

Deploy-time values are rendered in ``Fn::Sub`` style: ``${Logical}`` for a ``Ref``,
``${Logical.Attribute}`` for an ``Fn::GetAtt``, ``${AWS::URLSuffix}`` for a pseudo parameter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Stack, Stage
from aws_cdk.assertions import Template

DEPLOYMENT = "Custom::CDKBucketDeployment"
HEADERS_POLICY = "AWS::CloudFront::ResponseHeadersPolicy"


def rendered(value: Any) -> str:
    """A CloudFormation string (plain, ``Ref``, ``Fn::GetAtt`` or an ``Fn::Join`` of those) as text."""
    if isinstance(value, str):
        return value
    if set(value) == {"Ref"}:
        return f"${{{value['Ref']}}}"
    if set(value) == {"Fn::GetAtt"}:
        return f"${{{'.'.join(value['Fn::GetAtt'])}}}"
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(rendered(part) for part in parts)
    raise AssertionError(f"cannot render {value!r}")


def _only(template: Template, resource_type: str) -> dict[str, Any]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, f"expected one {resource_type}, found {sorted(resources)}"
    return next(iter(resources.values()))


def csp_directives(template: Template) -> dict[str, list[str]]:
    """The page's Content-Security-Policy, directive → its sources."""
    headers = _only(template, HEADERS_POLICY)["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    policy = rendered(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    directives = [directive.split() for directive in policy.split(";")]
    return {name: sources for name, *sources in directives}


def page_config(stack: Stack, template: Template) -> dict[str, Any]:
    """The ``config.json`` the page's deployment writes, deploy-time values rendered."""
    properties = _only(template, DEPLOYMENT)["Properties"]
    stage = Stage.of(stack)
    assert stage is not None
    outdir = Path(stage.outdir)
    for key, markers in zip(properties["SourceObjectKeys"], properties["SourceMarkers"], strict=True):
        staged = outdir / f"asset.{key.removesuffix('.zip')}" / "config.json"
        if staged.is_file():
            text = staged.read_text()
            # A marker stands for a whole JSON value (a string, its quotes included).
            for marker, value in markers.items():
                text = text.replace(marker, rendered(value))
            return json.loads(text)
    raise AssertionError("the deployment writes no config.json")
