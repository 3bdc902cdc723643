"""The chat page's hosting (:class:`Frontend`) in a small standalone app, synthesized once.

The app holds ``Page`` (the construct's defaults, a fixed API URL), ``Hardened`` (a web ACL and a
country allowlist, the settings that answer two CloudFront findings), ``SignedIn`` (an upload origin
and OpenID Connect sign-in), and ``Wired`` / ``Cyclic``: a REST API whose response names the page's
origin (as CORS does), with the page's CSP origin taken from the API alone, or cut out of the stage
URL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aspects, CfnElement, Fn, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from infra_cdk.constructs.frontend import FRONTEND_DIR, Frontend, FrontendProps, rest_api_origin, url_origin
from strata.config.frontend import CONFIG_OBJECT, SIGN_IN_SCOPES, SignIn
from tests.infra.pages import csp_directives, page_config

API_HOST = "abc123defg.execute-api.eu-west-1.amazonaws.com"
API_BASE_URL = f"https://{API_HOST}/dev/v1"
UPLOAD_ORIGIN = "https://strata-dev-documents-0a1b2c3d.s3.eu-west-1.amazonaws.com"
SIGN_IN = SignIn(
    issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
    client_id="3n4b5urk1ft4fl3mg5e62d9ado",
    origin="https://strata-dev.auth.eu-west-1.amazoncognito.com",
)
WEB_ACL_ARN = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/strata-page/0a1b2c3d-4e5f-6789-abcd-ef0123456789"

DEPLOYER = "Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C"
DEPLOYER_POLICY = f"{DEPLOYER}/ServiceRole/DefaultPolicy/Resource"
# Every AwsSolutions finding of the default construct: (level, path under the stack, finding).
# The reviewed reasons live in infra_cdk/nag.py, the only place that suppresses.
EXPECTED_FINDINGS = {
    ("warning", "Frontend/Distribution/Resource", "AwsSolutions-CFR1"),
    ("warning", "Frontend/Distribution/Resource", "AwsSolutions-CFR2"),
    ("error", "Frontend/Distribution/Resource", "AwsSolutions-CFR4"),
    ("error", f"{DEPLOYER}/Resource", "AwsSolutions-L1"),
    (
        "error",
        f"{DEPLOYER}/ServiceRole/Resource",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    ),
    ("error", DEPLOYER_POLICY, "AwsSolutions-IAM5[Action::s3:GetObject*]"),
    ("error", DEPLOYER_POLICY, "AwsSolutions-IAM5[Action::s3:GetBucket*]"),
    ("error", DEPLOYER_POLICY, "AwsSolutions-IAM5[Action::s3:List*]"),
    ("error", DEPLOYER_POLICY, "AwsSolutions-IAM5[Action::s3:DeleteObject*]"),
    ("error", DEPLOYER_POLICY, "AwsSolutions-IAM5[Action::s3:Abort*]"),
    (
        "error",
        DEPLOYER_POLICY,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]",
    ),
    ("error", DEPLOYER_POLICY, "AwsSolutions-IAM5[Resource::<FrontendBucket.Arn>/*]"),
    ("error", DEPLOYER_POLICY, "AwsSolutions-IAM5[Resource::*]"),
}
_FINDING = re.compile(r"^(AwsSolutions-[A-Za-z0-9]+(?:\[.*?\])?):")


@dataclass(frozen=True)
class Hosted:
    stack: Stack
    frontend: Frontend
    template: Template
    annotations: Annotations


@dataclass(frozen=True)
class HostingApp:
    page: Hosted
    hardened: Hosted
    signed_in: Hosted
    wired: Hosted
    cyclic: Stack
    outdir: Path


def _hosted(app: App, stack_id: str, props: FrontendProps) -> tuple[Stack, Frontend]:
    stack = Stack(app, stack_id)
    return stack, Frontend(stack, "Frontend", props)


def _wired(app: App, stack_id: str, *, origin_from_api: bool) -> tuple[Stack, Frontend]:
    """A REST API and the page, each naming the other: the page's config and CSP name the API,
    a method's response names the page's origin (the lead's CORS does the same)."""
    stack = Stack(app, stack_id)
    api = apigw.RestApi(stack, "Api", deploy_options=apigw.StageOptions(stage_name="dev"))
    frontend = Frontend(
        stack,
        "Frontend",
        FrontendProps(api_base_url=f"{api.url}v1", api_origin=rest_api_origin(api) if origin_from_api else None),
    )
    header = "method.response.header.Access-Control-Allow-Origin"
    api.root.add_method(
        "GET",
        apigw.MockIntegration(
            request_templates={"application/json": '{"statusCode": 200}'},
            integration_responses=[
                apigw.IntegrationResponse(status_code="200", response_parameters={header: f"'{frontend.origin}'"})
            ],
        ),
        method_responses=[apigw.MethodResponse(status_code="200", response_parameters={header: True})],
    )
    return stack, frontend


@pytest.fixture(scope="module")
def hosting(tmp_path_factory: pytest.TempPathFactory) -> HostingApp:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(outdir=str(outdir))
    page = _hosted(app, "Page", FrontendProps(api_base_url=API_BASE_URL))
    hardened = _hosted(
        app,
        "Hardened",
        FrontendProps(api_base_url=API_BASE_URL, web_acl_arn=WEB_ACL_ARN, geo_allowlist=("DE", "FR")),
    )
    signed_in = _hosted(
        app, "SignedIn", FrontendProps(api_base_url=API_BASE_URL, upload_origins=(UPLOAD_ORIGIN,), sign_in=SIGN_IN)
    )
    wired = _wired(app, "Wired", origin_from_api=True)
    cyclic = _wired(app, "Cyclic", origin_from_api=False)
    Aspects.of(app).add(AwsSolutionsChecks())
    built = [
        Hosted(stack, frontend, Template.from_stack(stack), Annotations.from_stack(stack))
        for stack, frontend in (page, hardened, signed_in, wired)
    ]
    return HostingApp(*built, cyclic=cyclic[0], outdir=outdir)


@pytest.fixture(scope="module")
def page(hosting: HostingApp) -> Hosted:
    return hosting.page


def _only(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, f"expected one {resource_type}, found {sorted(resources)}"
    return next(iter(resources.items()))


def _logical_id(hosted: Hosted, bucket: s3.IBucket) -> str:
    resource = bucket.node.default_child
    assert isinstance(resource, CfnElement)
    return hosted.stack.get_logical_id(resource)


def _references(value: Any) -> set[str]:
    """Logical ids that ``value`` (a piece of a template) refers to."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return {value["Ref"]}
        if set(value) == {"Fn::GetAtt"}:
            return {value["Fn::GetAtt"][0]}
        return set().union(*map(_references, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_references, value)) if value else set()
    return set()


def _findings(hosted: Hosted) -> set[tuple[str, str, str]]:
    stack_path = f"/{hosted.stack.node.path}/"
    found = set()
    for level, messages in (
        ("error", hosted.annotations.find_error("*", Match.string_like_regexp("AwsSolutions-"))),
        ("warning", hosted.annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-"))),
    ):
        for message in messages:
            match = _FINDING.match(str(message.entry.data))
            assert match, message.entry.data
            finding = re.sub(r"<FrontendBucket[A-F0-9]{8}\.Arn>", "<FrontendBucket.Arn>", match.group(1))
            found.add((level, message.id.removeprefix(stack_path), finding))
    return found


def test_bucket_is_private_and_not_a_website(page: Hosted) -> None:
    bucket_id = _logical_id(page, page.frontend.bucket)
    bucket = page.template.to_json()["Resources"][bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in bucket
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": _logical_id(page, page.frontend.logs)}


def test_bucket_policy_lets_only_this_distribution_read(page: Hosted) -> None:
    bucket_id = _logical_id(page, page.frontend.bucket)
    distribution_id, _ = _only(page.template, "AWS::CloudFront::Distribution")
    policies = page.template.find_resources("AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": bucket_id}}})
    (policy,) = policies.values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allows = [statement for statement in statements if statement["Effect"] == "Allow"]
    assert len(allows) == 1, allows
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source_arn = json.dumps(allow["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert ":distribution/" in source_arn and json.dumps({"Ref": distribution_id}) in source_arn
    denies = [statement for statement in statements if statement["Effect"] == "Deny"]
    assert any(statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for statement in denies)


def test_distribution_reads_the_bucket_through_an_origin_access_control(page: Hosted) -> None:
    control_id, control = _only(page.template, "AWS::CloudFront::OriginAccessControl")
    signing = control["Properties"]["OriginAccessControlConfig"]
    assert (signing["OriginAccessControlOriginType"], signing["SigningProtocol"], signing["SigningBehavior"]) == (
        "s3",
        "sigv4",
        "always",
    )
    _, distribution = _only(page.template, "AWS::CloudFront::Distribution")
    (origin,) = distribution["Properties"]["DistributionConfig"]["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [control_id, "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}, "no legacy origin access identity"
    assert origin["DomainName"] == {"Fn::GetAtt": [_logical_id(page, page.frontend.bucket), "RegionalDomainName"]}


def test_viewers_are_redirected_to_https_and_get_the_page_at_the_root(page: Hosted) -> None:
    _, distribution = _only(page.template, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultRootObject"] == "index.html"
    assert config["Logging"]["Bucket"] == {"Fn::GetAtt": [_logical_id(page, page.frontend.logs), "RegionalDomainName"]}


def test_content_security_policy_connects_to_the_page_and_the_api_only(page: Hosted) -> None:
    policy_id, policy = _only(page.template, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    directives = dict(
        directive.strip().split(" ", 1)
        for directive in headers["ContentSecurityPolicy"]["ContentSecurityPolicy"].split(";")
    )
    assert directives["connect-src"].split() == ["'self'", f"https://{API_HOST}"]
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    _, distribution = _only(page.template, "AWS::CloudFront::Distribution")
    behavior = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}


def test_api_origin_of_a_deploy_time_url_is_resolved_by_cloudformation() -> None:
    stack = Stack(App(), "Tokens")
    url = Fn.join("", ["https://", Fn.ref("AWS::StackName"), ".example.com/dev/v1"])
    resolved = stack.resolve(url_origin(url))
    assert resolved == {"Fn::Join": ["", ["https://", {"Fn::Select": [2, {"Fn::Split": ["/", stack.resolve(url)]}]}]]}


def test_deployment_writes_config_json_with_the_api_url_next_to_the_page(hosting: HostingApp) -> None:
    _, deployment = _only(hosting.page.template, "Custom::CDKBucketDeployment")
    properties = deployment["Properties"]
    staged = [hosting.outdir / f"asset.{key.removesuffix('.zip')}" for key in properties["SourceObjectKeys"]]
    page_files, config_files = staged
    page = {p.relative_to(FRONTEND_DIR) for p in FRONTEND_DIR.rglob("*") if p.is_file() and p.name != CONFIG_OBJECT}
    assert page and {path.relative_to(page_files) for path in page_files.rglob("*") if path.is_file()} == page
    assert (page_files / "index.html").read_bytes() == (FRONTEND_DIR / "index.html").read_bytes()
    assert json.loads((config_files / CONFIG_OBJECT).read_text()) == {"apiBaseUrl": API_BASE_URL}
    assert properties["DistributionPaths"] == ["/*"]
    assert properties["Prune"] is True


def test_with_sign_in_config_json_tells_the_page_the_issuer_and_app_client(hosting: HostingApp) -> None:
    assert page_config(hosting.signed_in.stack, hosting.signed_in.template) == {
        "apiBaseUrl": API_BASE_URL,
        "signIn": {"issuer": SIGN_IN.issuer, "clientId": SIGN_IN.client_id, "scopes": SIGN_IN_SCOPES},
    }


def test_uploads_and_sign_in_add_their_origins_to_connect_src_and_nothing_else(hosting: HostingApp) -> None:
    signed_in, page = csp_directives(hosting.signed_in.template), csp_directives(hosting.page.template)
    assert signed_in["connect-src"] == [
        "'self'",
        f"https://{API_HOST}",
        UPLOAD_ORIGIN,
        "https://cognito-idp.eu-west-1.amazonaws.com",
        SIGN_IN.origin,
    ]
    assert {name: sources for name, sources in signed_in.items() if name != "connect-src"} == {
        name: sources for name, sources in page.items() if name != "connect-src"
    }
    assert _findings(hosting.signed_in) == EXPECTED_FINDINGS


def test_deleting_the_stack_empties_and_deletes_the_page_bucket_but_keeps_the_logs(page: Hosted) -> None:
    resources = page.template.to_json()["Resources"]
    assert resources[_logical_id(page, page.frontend.bucket)]["DeletionPolicy"] == "Delete"
    assert resources[_logical_id(page, page.frontend.logs)]["DeletionPolicy"] == "Retain"
    _, deployment = _only(page.template, "Custom::CDKBucketDeployment")
    assert deployment["Properties"]["RetainOnDelete"] is False, "the deployment removes the files it wrote"


def test_origin_is_the_distribution_domain_over_https(page: Hosted) -> None:
    distribution_id, _ = _only(page.template, "AWS::CloudFront::Distribution")
    assert page.stack.resolve(page.frontend.origin) == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}]]
    }


def test_cdk_nag_reports_exactly_the_reviewed_findings(page: Hosted) -> None:
    assert _findings(page) == EXPECTED_FINDINGS


def test_a_web_acl_and_a_country_allowlist_answer_cfr1_and_cfr2(hosting: HostingApp) -> None:
    hardened = hosting.hardened
    _, distribution = _only(hardened.template, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]
    assert config["WebACLId"] == WEB_ACL_ARN
    assert config["Restrictions"]["GeoRestriction"] == {"RestrictionType": "whitelist", "Locations": ["DE", "FR"]}
    rules = {finding for _, _, finding in _findings(hardened)}
    assert "AwsSolutions-CFR1" not in rules and "AwsSolutions-CFR2" not in rules
    assert _findings(hardened) == {
        item for item in EXPECTED_FINDINGS if item[2] not in ("AwsSolutions-CFR1", "AwsSolutions-CFR2")
    }


def test_the_api_may_name_the_page_when_the_csp_origin_comes_from_the_api_alone(hosting: HostingApp) -> None:
    wired = hosting.wired  # Template.from_stack refuses a template with a dependency cycle
    api_id = wired.stack.get_logical_id(wired.stack.node.find_child("Api").node.default_child)
    _, policy = _only(wired.template, "AWS::CloudFront::ResponseHeadersPolicy")
    csp = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    resources = set(wired.template.to_json()["Resources"])
    assert _references(csp) & resources == {api_id}, "the CSP names the API, not its stage"
    _, deployment = _only(wired.template, "Custom::CDKBucketDeployment")
    (stage_id, _), *_ = wired.template.find_resources("AWS::ApiGateway::Stage").items()
    assert stage_id in _references(deployment["Properties"]["SourceMarkers"]), "config.json has the stage URL"


def test_an_origin_cut_from_the_stage_url_makes_a_cycle_once_the_api_names_the_page(hosting: HostingApp) -> None:
    with pytest.raises(RuntimeError, match=r"dependency cycle: .*FrontendSecurityHeaders"):
        Template.from_stack(hosting.cyclic)
