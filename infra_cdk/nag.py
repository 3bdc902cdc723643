"""Every cdk-nag (AwsSolutions) finding that was reviewed and accepted, each with its reason.

Suppressions are attached to the construct they concern and, for granular IAM rules, only to the
exact finding (``applies_to``), so a new wildcard or managed policy still fails the checks. Keep
this the only place that suppresses findings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct

from infra_cdk.nag_packs import SDK_CALLS, custom_resource_handlers, suppress_pack_findings
from infra_cdk.stack import StrataStack

_BASIC_EXECUTION_ROLE = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
_VPC_EXECUTION_ROLE = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
_API_GATEWAY_LOGS_ROLE = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)


def _suppress(
    construct: IConstruct | Sequence[IConstruct],
    rule: str,
    reason: str,
    applies_to: Sequence[str | RegexAppliesTo] | None = None,
) -> None:
    NagSuppressions.add_resource_suppressions(
        list(construct) if isinstance(construct, list | tuple) else construct,
        [NagPackSuppression(id=rule, reason=reason, applies_to=list(applies_to) if applies_to else None)],
        apply_to_children=True,
    )


def _regex(pattern: str) -> RegexAppliesTo:
    return RegexAppliesTo(regex=f"/{pattern}/g")


def _escape(literal: str) -> str:
    """``literal`` for a JavaScript regular expression literal."""
    return re.escape(literal).replace("/", r"\/")


def suppress_reviewed_findings(stack: StrataStack) -> None:
    """Attach the reviewed suppressions to ``stack``'s constructs."""
    _functions(stack)
    _api(stack)
    _search(stack)
    _models(stack)
    _frontend(stack)
    suppress_pack_findings(stack, stack.config.nag_packs)
    _suppress(
        stack.key_pepper,
        "AwsSolutions-SMG4",
        "The pepper keys every stored API-key hash: rotating it invalidates all keys at once, so it "
        "is rotated by the documented re-keying procedure, never on a schedule.",
    )

    # CDK's singleton custom resources: the bucket's notification configuration, the page upload,
    # the SDK calls (the documents bucket's CORS rule).
    for child in custom_resource_handlers(
        stack, "BucketNotificationsHandler", "Custom::CDKBucketDeployment", SDK_CALLS
    ):
        _suppress(
            child,
            "AwsSolutions-IAM4",
            "CDK's custom-resource handlers (bucket notifications, the page upload, SDK calls) log "
            "through AWSLambdaBasicExecutionRole (log group/stream creation and PutLogEvents only).",
            [_BASIC_EXECUTION_ROLE],
        )


def _functions(stack: StrataStack) -> None:
    functions = stack.functions
    prefix = stack.resources.documents_bucket.prefix
    _suppress(
        functions,
        "AwsSolutions-IAM4",
        "AWSLambdaBasicExecutionRole grants only logs:CreateLogGroup, CreateLogStream and "
        "PutLogEvents: AWS's documented minimum for a function writing its own logs (in a VPC, "
        "AWSLambdaVPCAccessExecutionRole adds only the network-interface actions Lambda needs to "
        "attach the function to its subnets).",
        [_BASIC_EXECUTION_ROLE, _VPC_EXECUTION_ROLE],
    )
    _suppress(
        functions,
        "AwsSolutions-IAM5",
        "X-Ray tracing (Powertools Tracer): xray:PutTraceSegments and xray:PutTelemetryRecords "
        "support no resource-level permissions.",
        ["Resource::*"],
    )
    _suppress(
        functions,
        "AwsSolutions-IAM5",
        "Bucket grants limited to objects under the tenant prefix of the documents bucket: "
        "ingest's CDK grant_read (the action groups GetObject*, GetBucket*, List* are CDK's read "
        "set) and the api function's s3:PutObject (it signs presigned uploads, whose keys are "
        "chosen per request) and s3:DeleteObject (DELETE /v1/documents/{id}).",
        [
            "Action::s3:GetObject*",
            "Action::s3:GetBucket*",
            "Action::s3:List*",
            _regex(rf"^Resource::<StorageDocuments[A-Za-z0-9]+\.Arn>\/{_escape(prefix)}\*$"),
        ],
    )
    _suppress(
        functions,
        "AwsSolutions-IAM5",
        "Ingestion in parts: the ingest function reads, writes and deletes the staged chunks of the "
        "documents it is ingesting, under the staging prefix of the documents bucket (outside the "
        "tenant prefix, so no event fires); listing is limited to that prefix by a condition.",
        [
            _regex(
                rf"^Resource::<StorageDocuments[A-Za-z0-9]+\.Arn>\/"
                rf"{_escape(stack.resources.documents_bucket.staging_prefix)}\*$"
            )
        ],
    )
    _suppress(
        functions,
        "AwsSolutions-IAM5",
        "The interaction log: chat's s3:PutObject on new objects under the log's prefix of its "
        "bucket; each object's key is a fresh date/hour/uuid.",
        [
            _regex(
                rf"^Resource::<StorageInteractions[A-Za-z0-9]+\.Arn>\/"
                rf"{_escape(stack.resources.interactions_bucket.prefix)}\*$"
            )
        ],
    )
    _suppress(
        functions,
        "AwsSolutions-IAM5",
        "The keys table's global secondary indexes (listing a tenant's keys queries by-tenant): CDK's "
        "table grants cover the table's own indexes as <table>/index/*, nothing outside the table.",
        [_regex(r"^Resource::<TablesStrataKeys[A-Za-z0-9]+\.Arn>\/index\/\*$")],
    )
    _suppress(
        functions,
        "AwsSolutions-IAM5",
        "OpenSearch grants scoped to the chunk index (documents inside it) and, for ingest, to the "
        "hybrid-search pipelines it creates; OpenSearch paths below them cannot be enumerated.",
        [
            _regex(rf"^Resource::<SearchDomain[A-Za-z0-9]+\.Arn>\/{_escape(stack.search.index)}\/\*$"),
            _regex(r"^Resource::<SearchDomain[A-Za-z0-9]+\.Arn>\/_search\/pipeline\/\*$"),
        ],
    )
    _suppress(
        functions,
        "AwsSolutions-IAM5",
        "A Bedrock cross-region inference profile in the model registry routes each call to its "
        "foundation model in one of several regions: the model is named, the region cannot be.",
        [_regex(r"^Resource::arn:[^:]+:bedrock:\*::foundation-model\/.+$")],
    )
    _suppress(
        functions.all,
        "AwsSolutions-L1",
        "Python 3.12 is pinned on purpose: the layer's binary wheels (pydantic-core, tokenizers, "
        "numpy) are built for cp312, so a runtime bump goes with a layer rebuild and retest.",
    )


def _api(stack: StrataStack) -> None:
    api = stack.api
    if api.web_acl is None:
        _suppress(
            api.rest_api,
            "AwsSolutions-APIG3",
            "AWS WAF is turned off for this stage in cdk.json (strata.waf.enabled); stage throttling "
            "and the backend's per-tenant limits still apply.",
        )
    _suppress(
        api.rest_api,
        "AwsSolutions-APIG2",
        "Request bodies are validated by the FastAPI apps (pydantic), which answer in OpenAI's error "
        "shape; an API Gateway validator would answer in its own. Missing credentials are rejected "
        "by the authorizer before any integration runs.",
    )
    _suppress(
        list(api.methods.values()),
        "AwsSolutions-COG4",
        "Clients authenticate with OpenAI-style API keys (or JWTs) that the Lambda REQUEST "
        "authorizer resolves to a tenant; a Cognito user pool authorizer cannot verify API keys.",
    )
    _suppress(
        [method for key, method in api.methods.items() if key.endswith(" /healthz")],
        "AwsSolutions-APIG4",
        "Unauthenticated health probe for uptime checks; it returns no tenant data.",
    )
    _suppress(
        api.rest_api,
        "AwsSolutions-IAM4",
        "API Gateway's account-level CloudWatch role for execution logging uses "
        "AmazonAPIGatewayPushToCloudWatchLogs, the policy AWS documents for it.",
        [_API_GATEWAY_LOGS_ROLE],
    )


def _search(stack: StrataStack) -> None:
    search = stack.search
    if search.domain is None:  # a Serverless collection: no domain findings
        return
    if search.connections is None:
        _suppress(
            search.domain,
            "AwsSolutions-OS1",
            "The Lambdas run outside a VPC unless strata.vpc.enabled (no NAT gateway to pay for); the "
            "domain accepts only SigV4-signed requests from IAM principals of this account granted per "
            "index, and fine-grained access maps each to a role on the chunk index only.",
        )
    _suppress(
        search.domain,
        "AwsSolutions-OS3",
        "Access is controlled by IAM identity (SigV4), not by source IP: Lambda has no fixed IPs.",
    )
    _suppress(
        search.domain,
        "AwsSolutions-OS4",
        "No dedicated master nodes at the sizes set in cdk.json (strata.environments); add them "
        "for a larger production cluster.",
    )
    if not search.zone_awareness:
        _suppress(
            search.domain,
            "AwsSolutions-OS7",
            "Single data node at the development size set in cdk.json (strata.environments.dev); "
            "two or more nodes turn zone awareness on.",
        )


def _frontend(stack: StrataStack) -> None:
    distribution = stack.frontend.distribution
    _suppress(
        distribution,
        "AwsSolutions-CFR1",
        "The page is public and the API authenticates every call; a team restricts countries with "
        "FrontendProps.geo_allowlist.",
    )
    _suppress(
        distribution,
        "AwsSolutions-CFR2",
        "The page is static; the API behind it has its own regional web ACL. A CloudFront web ACL "
        "must live in us-east-1: pass one as FrontendProps.web_acl_arn.",
    )
    _suppress(
        distribution,
        "AwsSolutions-CFR4",
        "No custom domain, so the distribution uses CloudFront's default certificate, whose minimum "
        "protocol cannot be set; a custom domain with an ACM certificate lifts it.",
    )
    for child in stack.node.children:
        if not child.node.id.startswith("Custom::CDKBucketDeployment"):
            continue
        _suppress(
            child,
            "AwsSolutions-L1",
            "CDK's BucketDeployment pins its own handler's runtime; it is not configurable.",
        )
        _suppress(
            child,
            "AwsSolutions-IAM5",
            "CDK's BucketDeployment: read the page's asset zip from the bootstrap asset bucket, write "
            "and prune the page bucket's objects, and invalidate the distribution (CloudFront "
            "invalidation actions support no resource-level permissions).",
            [
                "Action::s3:GetObject*",
                "Action::s3:GetBucket*",
                "Action::s3:List*",
                "Action::s3:Abort*",
                "Action::s3:DeleteObject*",
                "Resource::*",
                _regex(r"^Resource::arn:[^:]+:s3:::cdk-[a-z0-9]+-assets-<AWS::AccountId>-[a-z0-9-]+\/\*$"),
                _regex(r"^Resource::<FrontendBucket[A-Za-z0-9]+\.Arn>\/\*$"),
            ],
        )


def _models(stack: StrataStack) -> None:
    _suppress(
        stack.models.role,
        "AwsSolutions-IAM5",
        "SageMaker hosting needs ecr:GetAuthorizationToken and cloudwatch:PutMetricData, which "
        "support no resource-level permissions; image pulls and logs are scoped to their resources.",
        ["Resource::*"],
    )
    config = stack.config
    if config.chat_model.model_data_url or config.embedding_model.model_data_url:
        _suppress(
            stack.models.role,
            "AwsSolutions-IAM5",
            "CDK's bucket grant_read on the configured model artifact object only; the action groups "
            "(GetObject*, GetBucket*, List*) are CDK's read set.",
            ["Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*"],
        )
