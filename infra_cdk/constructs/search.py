"""The OpenSearch domain that stores chunk vectors (k-NN, faiss HNSW) and serves hybrid search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct


@dataclass(frozen=True, slots=True)
class SearchProps:
    """Props of :class:`Search`.

    index
        The chunk index the Lambdas use; grants are scoped to it.
    domain_name
        Domain name (3-28 characters, lowercase); fixed so the access policy can name the domain.
    engine_version
        OpenSearch ``x.y``; 2.10+ has the hybrid-search normalization processor. Default 2.19.
    instance_type
        Data node type. Default ``t3.medium.search`` (development size).
    data_nodes
        Data node count. 2 or 3+ spread the nodes over 2 or 3 availability zones. Default 1.
    volume_size_gb
        gp3 volume per data node. Default 20.
    log_retention
        Retention of the application and slow-log groups. Default one month.
    removal_policy
        What deleting the stack does to the domain. Default ``RETAIN``.
    """

    index: str
    domain_name: str
    engine_version: str = "2.19"
    instance_type: str = "t3.medium.search"
    data_nodes: int = 1
    volume_size_gb: int = 20
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN


class Search(Construct):
    """An encrypted, HTTPS-only OpenSearch domain, reached with SigV4 (IAM identity policies).

    The domain's access policy trusts only this account, which defers every decision to IAM: a
    request must be signed by a principal granted through :meth:`grant_read` or
    :meth:`grant_read_write`. Unsigned and anonymous requests are refused.

    Attributes
    ----------
    domain
        Encryption at rest, node-to-node encryption, HTTPS with TLS 1.2, application and slow logs.
    endpoint_url
        ``https://<domain endpoint>``: the value of ``STRATA_OPENSEARCH_ENDPOINT``.
    index
        The chunk index name (``STRATA_OPENSEARCH_INDEX``).
    """

    def __init__(self, scope: Construct, construct_id: str, props: SearchProps) -> None:
        super().__init__(scope, construct_id)
        self.index = props.index
        self.zone_awareness = props.data_nodes >= 2

        log_groups = {
            name: logs.LogGroup(self, name, retention=props.log_retention, removal_policy=RemovalPolicy.DESTROY)
            for name in ("AppLogs", "SlowSearchLogs", "SlowIndexLogs")
        }
        # The logs resource policy as a native resource (the domain's default is a custom resource).
        log_policy = logs.ResourcePolicy(
            self,
            "LogsResourcePolicy",
            policy_statements=[
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("es.amazonaws.com")],
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[group.log_group_arn for group in log_groups.values()],
                )
            ],
        )

        self.domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=props.domain_name,
            version=opensearch.EngineVersion.open_search(props.engine_version),
            capacity=opensearch.CapacityConfig(
                data_node_instance_type=props.instance_type,
                data_nodes=props.data_nodes,
                multi_az_with_standby_enabled=False,
            ),
            zone_awareness=opensearch.ZoneAwarenessConfig(
                enabled=self.zone_awareness,
                availability_zone_count=min(props.data_nodes, 3) if self.zone_awareness else None,
            ),
            ebs=opensearch.EbsOptions(volume_size=props.volume_size_gb, volume_type=ec2.EbsDeviceVolumeType.GP3),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            logging=opensearch.LoggingOptions(
                app_log_enabled=True,
                app_log_group=log_groups["AppLogs"],
                slow_search_log_enabled=True,
                slow_search_log_group=log_groups["SlowSearchLogs"],
                slow_index_log_enabled=True,
                slow_index_log_group=log_groups["SlowIndexLogs"],
            ),
            suppress_logs_resource_policy=True,
            removal_policy=props.removal_policy,
        )
        self.domain.node.add_dependency(log_policy)
        # Set on the CfnDomain itself: the L2 ``access_policies`` prop deploys a custom resource.
        stack = Stack.of(self)
        cfn_domain = cast(opensearch.CfnDomain, self.domain.node.default_child)
        cfn_domain.access_policies = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    principals=[iam.AccountRootPrincipal()],
                    actions=["es:ESHttp*"],
                    resources=[
                        stack.format_arn(service="es", resource="domain", resource_name=f"{props.domain_name}/*")
                    ],
                )
            ]
        ).to_json()
        self.endpoint_url = f"https://{self.domain.domain_endpoint}"

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Query the chunk index: GET/HEAD on it, and POST on its ``_search`` (queries carry a body)."""
        self.domain.grant_index_read(self.index, grantee)
        self.domain.grant_path_read_write(f"{self.index}/_search", grantee)

    def grant_read_write(self, grantee: iam.IGrantable) -> None:
        """Create, fill and prune the chunk index, and manage its hybrid-search pipeline."""
        self.domain.grant_index_read_write(self.index, grantee)
        self.domain.grant_path_read_write("_search/pipeline", grantee)
        self.domain.grant_path_read_write("_search/pipeline/*", grantee)
