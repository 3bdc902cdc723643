"""The reviewed findings of the optional cdk-nag packs (``strata.nag_packs``), each with its reason.

``HIPAA.Security`` and ``NIST.800.53.R5`` share most rule names (``<pack>-<rule>``), so each
acknowledgement names its rules once and is attached for every pack the stage turns on. As in
:mod:`infra_cdk.nag`, an acknowledgement is attached to the resources it concerns: named
constructs where the reason depends on what a resource holds (buckets, tables, functions), every
resource of one type where the reason holds for the type (log groups, CDK's inline policies).
A reason that depends on configuration (no VPC, no WAF) is attached only while that holds.

Most findings ask for customer-managed KMS keys, backups beyond point-in-time recovery,
replication and reserved concurrency: controls a team adds for its own compliance regime, at a
cost. Each reason says why the stack is fine without the control and what turning it on takes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct

from infra_cdk.stack import StrataStack

KNOWN_PACKS = ("HIPAA.Security", "NIST.800.53.R5")
"""The optional packs ``strata.nag_packs`` may name (``infra_cdk.app.NAG_PACKS``)."""

_CMK_COST = (
    "A customer-managed KMS key costs about $1 a month plus KMS request charges, and every "
    "principal that reads or writes the data then needs a grant on the key."
)
# SageMaker rejects KmsKeyId for instance types with local (NVMe) storage, which the instance
# encrypts with a hardware module: the "d" families (c5d, g4dn, m6id...) and these.
_LOCAL_STORAGE_FAMILIES = frozenset({"g5", "g6", "g6e", "p5", "p5e", "p5en", "trn1", "trn2"})
_D_FAMILY = re.compile(r"^[a-z]+\d+[a-z]*d[a-z]*$")


SDK_CALLS = "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
"""The construct id of the singleton function behind CDK's ``AwsCustomResource`` (SDK calls)."""


def custom_resource_handlers(stack: Stack, *id_prefixes: str) -> list[IConstruct]:
    """CDK's singleton custom-resource handlers among ``stack``'s children whose ids start so."""
    return [child for child in stack.node.children if child.node.id.startswith(id_prefixes)]


class UnknownNagPackError(ValueError):
    """A pack name that is not one of :data:`KNOWN_PACKS`."""


@dataclass(frozen=True, slots=True)
class _Acknowledgement:
    """Rules (without the pack prefix) accepted on ``resources`` for ``reason``."""

    resources: Sequence[IConstruct]
    rules: tuple[str, ...]
    reason: str
    packs: tuple[str, ...] = KNOWN_PACKS


def suppress_pack_findings(stack: StrataStack, packs: Iterable[str]) -> None:
    """Attach the reviewed acknowledgements of ``packs`` (e.g. ``stack.config.nag_packs``) to
    ``stack``'s constructs; nothing when ``packs`` is empty. Call it before synthesis.

    Raises
    ------
    UnknownNagPackError
        A name in ``packs`` is not one of :data:`KNOWN_PACKS`.
    """
    packs = tuple(packs)
    unknown = sorted(set(packs) - set(KNOWN_PACKS))
    if unknown:
        raise UnknownNagPackError(f"unknown cdk-nag packs {unknown}; known: {list(KNOWN_PACKS)}")
    for acknowledgement in _acknowledgements(stack):
        suppressions = [
            NagPackSuppression(id=f"{pack}-{rule}", reason=acknowledgement.reason)
            for pack in packs
            if pack in acknowledgement.packs
            for rule in acknowledgement.rules
        ]
        if suppressions and acknowledgement.resources:
            NagSuppressions.add_resource_suppressions(
                list(acknowledgement.resources), suppressions, apply_to_children=True
            )


def _acknowledgements(stack: StrataStack) -> list[_Acknowledgement]:
    return [
        *_logs_and_policies(stack),
        *_buckets(stack),
        *_tables(stack),
        *_functions(stack),
        *_api(stack),
        *_search(stack),
        *_models(stack),
        *_network(stack),
        _Acknowledgement(
            [stack.key_pepper],
            ("SecretsManagerRotationEnabled",),
            "The pepper keys every stored API-key hash: rotating it invalidates all keys at once, so "
            "it is rotated by the documented re-keying procedure, never on a schedule.",
        ),
        _Acknowledgement(
            [stack.key_pepper],
            ("SecretsManagerUsingKMSKey",),
            "Encrypted with the account's AWS-managed key aws/secretsmanager. Its readers are this "
            "account's principals with IAM grants on this one secret (the functions, and operators "
            "running the strata admin commands); a customer-managed key is needed only for "
            "cross-account readers or key-policy separation of duties. " + _CMK_COST,
        ),
    ]


def _resources_of_type(stack: Stack, resource_type: str) -> list[CfnResource]:
    return [
        node
        for node in stack.node.find_all()
        if isinstance(node, CfnResource) and node.cfn_resource_type == resource_type
    ]


def _single_role_policies(stack: Stack) -> list[CfnResource]:
    """CDK's per-role policies: attached to exactly one role and to no user or group."""

    def resolved(principals: object) -> list[object]:  # the L2 Policy's lists are lazy tokens
        return list(stack.resolve(principals) or [])

    return [
        policy
        for policy in _resources_of_type(stack, "AWS::IAM::Policy")
        if isinstance(policy, iam.CfnPolicy)
        and len(resolved(policy.roles)) == 1
        and not resolved(policy.users)
        and not resolved(policy.groups)
    ]


def _logs_and_policies(stack: StrataStack) -> list[_Acknowledgement]:
    return [
        _Acknowledgement(
            _resources_of_type(stack, "AWS::Logs::LogGroup"),
            ("CloudWatchLogGroupEncrypted",),
            "CloudWatch Logs encrypts every log group at rest with service-managed keys. A "
            "customer-managed key (LogGroup encryption_key) adds key-policy control and audited "
            "decrypts; its key policy must admit the logs service principal of the region. " + _CMK_COST,
        ),
        _Acknowledgement(
            _single_role_policies(stack),
            ("IAMNoInlinePolicy",),
            "CDK renders a role's grants as that role's own AWS::IAM::Policy, attached to that one "
            "role and created and deleted with it; its statements are the least-privilege grants "
            "reviewed under AwsSolutions-IAM5. A managed policy would be a second, attachable copy.",
        ),
    ]


def _buckets(stack: StrataStack) -> list[_Acknowledgement]:
    storage, frontend = stack.storage, stack.frontend
    data = [storage.bucket, storage.interactions_bucket]
    access_logs = [storage.access_logs, frontend.logs]
    return [
        _Acknowledgement(
            [*data, *access_logs],
            ("S3BucketReplicationEnabled",),
            "One region by design. Cross-region replication needs versioning, a destination bucket "
            "in a second region and a replication role, and doubles storage; a team with a "
            "regional disaster-recovery requirement adds a replication rule to these buckets.",
        ),
        _Acknowledgement(
            [frontend.bucket],
            ("S3BucketReplicationEnabled", "S3BucketVersioningEnabled"),
            "The page bucket holds the build of frontend/ from this repository: every cdk deploy "
            "re-uploads it and prunes the rest, so the repository is its history and its copy.",
        ),
        _Acknowledgement(
            [storage.interactions_bucket],
            ("S3BucketVersioningEnabled",),
            "The interaction log is write-once: each object's key is a fresh date/hour/uuid, so "
            "nothing is overwritten, and its lifecycle rule expires the log's objects after the "
            "stage's retention (interactions_retention_days).",
        ),
        _Acknowledgement(
            access_logs,
            ("S3BucketVersioningEnabled",),
            "Log delivery writes each log object once under a unique name; the lifecycle rule "
            "expires them. Nothing here is overwritten.",
        ),
        _Acknowledgement(
            access_logs,
            ("S3DefaultEncryptionKMS",),
            "These buckets receive S3 server access logs, which S3 delivers only to buckets whose "
            "default encryption is SSE-S3 (SSE-KMS is not supported for log destinations).",
        ),
        _Acknowledgement(
            [frontend.bucket],
            ("S3DefaultEncryptionKMS",),
            "Public static files (the chat page) served through CloudFront origin access control; "
            "SSE-KMS would protect nothing secret and need a key policy admitting CloudFront.",
        ),
        _Acknowledgement(
            data,
            ("S3DefaultEncryptionKMS",),
            "SSE-S3 (AES-256, S3-managed keys) encrypts every object; TLS is enforced and public "
            "access blocked. With a customer-managed key (S3 Bucket Keys keep request charges "
            "down), ingest, the api function (its presigned uploads are signed with its role) and "
            "chat (the interaction log) need grants on it. " + _CMK_COST,
        ),
    ]


def _tables(stack: StrataStack) -> list[_Acknowledgement]:
    return [
        _Acknowledgement(
            [stack.tables.table(spec) for spec in stack.resources.tables],
            ("DynamoDBInBackupPlan",),
            "Point-in-time recovery is on for every table (restore to any second of the last 35 "
            "days). An AWS Backup plan adds scheduled copies kept longer or in another account, "
            "billed per GB-month: add one (aws_backup.BackupPlan) where retention beyond 35 days "
            "is required.",
        )
    ]


def _functions(stack: StrataStack) -> list[_Acknowledgement]:
    functions = stack.functions
    served = [functions.authorizer, functions.api, functions.chat]
    # CDK's singleton BucketDeployment handler uploads the page at deploy time; its SDK-call
    # handler puts the documents bucket's CORS rule.
    page_upload = custom_resource_handlers(stack, "Custom::CDKBucketDeployment")
    sdk_calls = custom_resource_handlers(stack, SDK_CALLS)
    deploy_time = [functions.search_bootstrap, *page_upload, *sdk_calls]
    ingest_source = stack.resources.ingest_source
    acknowledgements = [
        _Acknowledgement(
            served,
            ("LambdaConcurrency",),
            "API Gateway invokes these, and the stage's throttle (strata.api in cdk.json) and the "
            "per-tenant rate limits bound how many run at once. Reserved concurrency would also "
            "set part of the account's regional pool aside for each function, used or not; set it "
            "when the account is shared with other workloads.",
        ),
        _Acknowledgement(
            served,
            ("LambdaDLQ",),
            "API Gateway invokes these synchronously and the caller gets the error; a Lambda "
            "dead-letter queue receives only failed asynchronous invocations.",
        ),
        _Acknowledgement(
            [functions.ingest],
            ("LambdaConcurrency",),
            f"The SQS event source's maximum concurrency ({ingest_source.max_concurrency}) bounds "
            "how many copies run at once, without setting part of the account's pool aside.",
        ),
        _Acknowledgement(
            [functions.ingest],
            ("LambdaDLQ",),
            "The ingest queue's event source mapping invokes it synchronously; messages that keep "
            "failing move to the queue's own dead-letter queue (redrive policy), which an alarm "
            "watches (IngestDlqNotEmpty). A Lambda dead-letter queue receives only failed "
            "asynchronous invocations.",
        ),
        _Acknowledgement(
            deploy_time,
            ("LambdaConcurrency", "LambdaDLQ"),
            "Custom-resource handlers that CloudFormation invokes once per deployment (the search "
            "index bootstrap, CDK's page upload, the documents bucket's CORS rule): there is no "
            "load to bound, and a failure fails the deployment, which CloudFormation rolls back; a "
            "stale deployment event is not worth replaying from a queue.",
        ),
    ]
    if stack.network is None:
        acknowledgements.append(
            _Acknowledgement(
                [*functions.all, *page_upload, *sdk_calls],
                ("LambdaInsideVPC",),
                "strata.vpc.enabled is off for this stage: no NAT gateway, billed by the hour and "
                "per GB, to pay for. The functions accept no inbound connections, and their calls "
                "to AWS services go over TLS, signed with SigV4 under least-privilege IAM grants; "
                "turning the VPC on puts them and the search domain in private subnets.",
            )
        )
    else:
        acknowledgements.append(
            _Acknowledgement(
                page_upload,
                ("LambdaInsideVPC",),
                "CDK's page upload runs at deploy time only: it copies the public page from CDK's "
                "asset bucket to the page bucket and invalidates CloudFront, touching no tenant data.",
            )
        )
        acknowledgements.append(
            _Acknowledgement(
                sdk_calls,
                ("LambdaInsideVPC",),
                "CDK's SDK-call handler runs at deploy time only: it puts the documents bucket's CORS "
                "rule (s3:PutBucketCORS on that bucket), reading no object and touching no tenant data.",
            )
        )
    return acknowledgements


def _api(stack: StrataStack) -> list[_Acknowledgement]:
    stage = [stack.api.rest_api.deployment_stage]
    acknowledgements = [
        _Acknowledgement(
            stage,
            ("APIGWCacheEnabledAndEncrypted",),
            "No stage cache: the API's answers are per tenant and per request (chat completions "
            "are streamed POSTs), and a stage cache is billed by the hour. Deterministic chat "
            "answers are cached per tenant in the response-cache table instead.",
        ),
        _Acknowledgement(
            stage,
            ("APIGWSSLEnabled",),
            "A stage client certificate lets HTTP backends authenticate API Gateway; every "
            "integration here is a Lambda proxy integration, invoked through the Lambda API with "
            "IAM, so there is no HTTP backend to present it to.",
        ),
    ]
    if stack.api.web_acl is None:
        acknowledgements.append(
            _Acknowledgement(
                stage,
                ("APIGWAssociatedWithWAF",),
                "AWS WAF is turned off for this stage in cdk.json (strata.waf.enabled); stage "
                "throttling and the backend's per-tenant limits still apply.",
                packs=("NIST.800.53.R5",),
            )
        )
    return acknowledgements


def _search(stack: StrataStack) -> list[_Acknowledgement]:
    search = stack.search
    if search.domain is None or search.connections is not None:
        return []
    return [
        _Acknowledgement(
            [search.domain],
            ("OpenSearchInVPCOnly",),
            "strata.vpc.enabled is off for this stage, so the Lambdas run outside a VPC; the domain "
            "accepts only SigV4-signed requests from IAM principals of this account granted per "
            "index, and fine-grained access maps each to a role on the chunk index only.",
        )
    ]


def _models(stack: StrataStack) -> list[_Acknowledgement]:
    chat = stack.config.chat_model.instance_type or ""
    embedding = stack.config.embedding_model.instance_type
    no_capture = (
        "No data capture is configured, so the endpoint writes no request or response to storage; "
        "what it stores is the container image and the model's weights."
    )
    endpoints = (
        (stack.models.chat, chat, "chat"),
        (stack.models.embedding, embedding, "embedding"),
    )
    acknowledgements = []
    for endpoint, instance_type, name in endpoints:
        if instance_type and _has_local_storage(instance_type):
            reason = (
                f"The {name} endpoint runs on {instance_type}, whose local NVMe storage the instance "
                "encrypts with a hardware module; SageMaker rejects KmsKeyId for such instance types."
            )
        else:
            reason = (
                f"{no_capture} A KMS key (EndpointConfig KmsKeyId) for the {name} endpoint needs a "
                "grant to the SageMaker execution role. " + _CMK_COST
            )
        config = endpoint.node.find_child("Config")
        acknowledgements.append(_Acknowledgement([config], ("SageMakerEndpointConfigurationKMSKeyConfigured",), reason))
    return acknowledgements


def _has_local_storage(instance_type: str) -> bool:
    family = instance_type.removeprefix("ml.").split(".")[0]
    return family in _LOCAL_STORAGE_FAMILIES or bool(_D_FAMILY.match(family))


def _network(stack: StrataStack) -> list[_Acknowledgement]:
    if stack.network is None:
        return []
    public = list(stack.network.vpc.public_subnets)
    acknowledgements = [
        _Acknowledgement(
            public,
            ("VPCNoUnrestrictedRouteToIGW",),
            "A route to the internet gateway is what makes these the public subnets; they hold only "
            "the NAT gateways that the private subnets' egress goes through. The functions and the "
            "search domain are in the private subnets, with no inbound path from the internet.",
        )
    ]
    mapping = [subnet for subnet in public if _maps_public_ips(subnet)]
    if mapping:
        acknowledgements.append(
            _Acknowledgement(
                mapping,
                ("VPCSubnetAutoAssignPublicIpDisabled",),
                "Only NAT gateways, each with its own Elastic IP, are launched in the public "
                "subnets, so no instance gets an auto-assigned address. Network can turn the "
                "mapping off (SubnetConfiguration map_public_ip_on_launch=False).",
            )
        )
    return acknowledgements


def _maps_public_ips(subnet: ec2.ISubnet) -> bool:
    resource = subnet.node.default_child
    return isinstance(resource, ec2.CfnSubnet) and bool(resource.map_public_ip_on_launch)
