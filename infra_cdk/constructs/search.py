"""The vector store of the chunks: an OpenSearch Service domain (default) or a Serverless collection.

Both serve the same index and hybrid search pipeline, which a deploy-time custom resource creates
with the library's own definitions (``functions/search_bootstrap``, :meth:`Search.add_bootstrap`).

Access, per mode:

* ``managed``: the domain's access policy trusts only this account, which defers to IAM: a request
  must be SigV4-signed by a role granted through :meth:`Search.grant_read` or
  :meth:`Search.grant_read_write`, whose identity policies are scoped to the chunk index's paths.
  With fine-grained access control (default) the security plugin checks again inside the domain:
  the bootstrap function's role is the master user and maps the write grantees to
  ``<index>-write`` and the read grantees to ``<index>-read``, both limited to the chunk index;
  any other role of the account gets nothing, even with ``es:ESHttp*``.
* ``serverless``: a VECTORSEARCH collection; IAM grants ``aoss:APIAccessAll`` on the collection and
  the data access policy names exactly the granted roles with the index permissions each needs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, cast

import jsii
from aws_cdk import CustomResource, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchserverless as aoss
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct, IValidation

from infra_cdk.constructs.environment import setting_env
from infra_cdk.constructs.lazy import lazy_list, lazy_string
from strata.retrieval.factory import DEFAULT_EMBEDDING_DIMENSION
from strata.retrieval.opensearch import IndexConfig, OpenSearchVectorStore

SearchMode = Literal["managed", "serverless"]
Access = Literal["read", "write"]

BOOTSTRAP_HANDLER = "functions.search_bootstrap.app.handler"
BOOTSTRAP_MEMORY_MB = 512
BOOTSTRAP_TIMEOUT_S = 300
"""The bootstrap function the stack creates for :meth:`Search.add_bootstrap`: a new collection's data
access policy can take minutes to apply, and the handler retries until shortly before this."""

SERVERLESS_READ = ("aoss:ReadDocument", "aoss:DescribeIndex")
SERVERLESS_WRITE = (*SERVERLESS_READ, "aoss:WriteDocument", "aoss:CreateIndex", "aoss:UpdateIndex")
SERVERLESS_PIPELINE = ("aoss:DescribeCollectionItems", "aoss:CreateCollectionItems", "aoss:UpdateCollectionItems")
"""Collection-level permissions of writers: the hybrid search pipeline is a collection item."""
BOOTSTRAP_HTTP_ACTIONS = ("es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPut")


class SearchConfigurationError(ValueError):
    """The props or the grants cannot make a working search construct."""


@dataclass(frozen=True, slots=True)
class SearchProps:
    """Props of :class:`Search`.

    index
        The chunk index the Lambdas use; grants are scoped to it.
    domain_name
        Domain (or collection) name, 3-28 characters, lowercase; fixed so the policies can name it.
    mode
        ``managed`` (default): an OpenSearch Service domain, sized below. ``serverless``: a
        VECTORSEARCH collection (no sizing; billed per OCU-hour with a floor even when idle).
        Such a collection assigns document ids itself, while ``OpenSearchVectorStore`` writes each
        chunk under its own ``_id``: ingestion needs a Serverless write path in the adapter first.
    engine_version
        OpenSearch ``x.y`` (managed); 2.19+ for faiss ``cosinesimil``. Default 2.19.
    instance_type
        Data node type (managed). Default ``t3.medium.search`` (development size).
    data_nodes
        Data node count (managed). 2 or 3+ spread the nodes over 2 or 3 availability zones.
    volume_size_gb
        gp3 volume per data node (managed). Default 20.
    fine_grained_access
        OpenSearch fine-grained access control with the bootstrap role as IAM master user
        (managed); it needs :meth:`Search.add_bootstrap`. Default off, so a stack that does not
        add the bootstrap yet still synthesizes; turn it on with the bootstrap.
    standby_replicas
        Serverless standby replicas in a second availability zone. Default off (development).
    vpc
        Place the domain (or a Serverless VPC endpoint) in this VPC's private subnets behind a
        security group that admits HTTPS from the functions granted access. Default none: public
        endpoint, SigV4 only.
    vpc_subnets
        Which subnets (default: private with egress, else isolated, one per availability zone).
    log_retention
        Retention of the domain's application and slow-log groups. Default one month.
    removal_policy
        What deleting the stack does to the domain or collection. Default ``RETAIN``.
    """

    index: str
    domain_name: str
    mode: SearchMode = "managed"
    engine_version: str = "2.19"
    instance_type: str = "t3.medium.search"
    data_nodes: int = 1
    volume_size_gb: int = 20
    fine_grained_access: bool = False
    standby_replicas: bool = False
    vpc: ec2.IVpc | None = None
    vpc_subnets: ec2.SubnetSelection | None = None
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN

    def __post_init__(self) -> None:
        if self.mode not in ("managed", "serverless"):
            raise SearchConfigurationError(f"mode must be 'managed' or 'serverless' (given {self.mode!r})")
        if not 3 <= len(self.domain_name) <= 28:
            raise SearchConfigurationError(f"domain_name must have 3-28 characters (given {self.domain_name!r})")


def pipeline_name(index: str) -> str:
    """The hybrid pipeline's name: the one ``build_vector_store`` uses when given none."""
    return f"{index}-hybrid"


def definition_hash(index: str, *, serverless: bool) -> str:
    """A hash of the index and pipeline bodies the library writes: a change makes an Update."""
    store = OpenSearchVectorStore(
        cast(Any, None),
        index,
        DEFAULT_EMBEDDING_DIMENSION,
        pipeline_name(index),
        config=IndexConfig(serverless=serverless),
    )
    text = json.dumps([store.index_body(), store.pipeline_body()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@jsii.implements(IValidation)
class _BootstrapRequired:
    def __init__(self, search: Search) -> None:
        self._search = search

    def validate(self) -> list[str]:
        # Without fine-grained access or a data access policy entry for it, ingest's cold start
        # creates the index itself; with them, only the bootstrap can.
        search = self._search
        if search.bootstrap is None and (search.fine_grained_access or search.mode == "serverless"):
            return [f"{search.mode} search with per-role access needs Search.add_bootstrap(function)"]
        return []


class Search(Construct):
    """The chunk store (module docstring: access per mode).

    Attributes
    ----------
    mode
        ``managed`` or ``serverless``.
    domain
        The domain (managed; ``None`` otherwise): encryption at rest, node-to-node encryption,
        HTTPS with TLS 1.2, application and slow logs, fine-grained access control.
    collection
        The VECTORSEARCH collection (serverless; ``None`` otherwise).
    endpoint_url
        ``https://…``: the value of ``STRATA_OPENSEARCH_ENDPOINT``.
    index / pipeline
        The chunk index and its hybrid search pipeline.
    environment
        The ``STRATA_*`` variables a function needs to reach the store in this mode.
    connections
        The security group in front of the domain or VPC endpoint (``None`` without a VPC).
    zone_awareness
        Whether the domain's nodes span availability zones.
    bootstrap
        The custom resource that :meth:`add_bootstrap` created (``None`` before).
    """

    def __init__(self, scope: Construct, construct_id: str, props: SearchProps) -> None:
        super().__init__(scope, construct_id)
        self._props = props
        self.mode: SearchMode = props.mode
        self.index = props.index
        self.pipeline = pipeline_name(props.index)
        self.zone_awareness = props.mode == "managed" and props.data_nodes >= 2
        self.fine_grained_access = props.mode == "managed" and props.fine_grained_access
        self.domain: opensearch.Domain | None = None
        self.collection: aoss.CfnCollection | None = None
        self.bootstrap: CustomResource | None = None
        self.connections: ec2.Connections | None = None
        self._principals: dict[Access, dict[str, str]] = {"read": {}, "write": {}}
        self._master_user_arn: str | None = None
        self._subnets: list[ec2.ISubnet] = []

        if props.vpc is not None:
            security_group = ec2.SecurityGroup(
                self,
                "SecurityGroup",
                vpc=props.vpc,
                description=f"{props.domain_name}: HTTPS from the functions granted access",
                allow_all_outbound=False,
            )
            self.connections = ec2.Connections(security_groups=[security_group], default_port=ec2.Port.tcp(443))
            count = (min(props.data_nodes, 3) if self.zone_awareness else 1) if props.mode == "managed" else 0
            self._subnets = _private_subnets(props.vpc, props.vpc_subnets, count)

        if props.mode == "managed":
            self._build_domain(props)
        else:
            self._build_collection(props)
        self.environment = {
            setting_env("vector_store"): "opensearch",
            setting_env("opensearch_endpoint"): self.endpoint_url,
            setting_env("opensearch_index"): self.index,
            setting_env("opensearch_serverless"): "true" if props.mode == "serverless" else "false",
        }
        self.node.add_validation(_BootstrapRequired(self))

    # -- managed domain -----------------------------------------------------------------------

    def _build_domain(self, props: SearchProps) -> None:
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
        fine_grained = None
        if self.fine_grained_access:
            # The master user is the bootstrap function's role, known once add_bootstrap is called.
            fine_grained = opensearch.AdvancedSecurityOptions(
                master_user_arn=lazy_string(self._produce_master_user_arn)
            )
        domain = opensearch.Domain(
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
            fine_grained_access_control=fine_grained,
            vpc=props.vpc,
            vpc_subnets=[ec2.SubnetSelection(subnets=self._subnets)] if props.vpc is not None else None,
            security_groups=self.connections.security_groups if self.connections else None,
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
        domain.node.add_dependency(log_policy)
        # Set on the CfnDomain itself: the L2 ``access_policies`` prop deploys a custom resource.
        cfn_domain = cast(opensearch.CfnDomain, domain.node.default_child)
        cfn_domain.access_policies = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    principals=[iam.AccountRootPrincipal()],
                    actions=["es:ESHttp*"],
                    resources=[self._domain_arn("*")],
                )
            ]
        ).to_json()
        self.domain = domain
        self.endpoint_url = f"https://{domain.domain_endpoint}"

    def _domain_arn(self, path: str) -> str:
        return Stack.of(self).format_arn(
            service="es", resource="domain", resource_name=f"{self._props.domain_name}/{path}"
        )

    def _produce_master_user_arn(self) -> str:
        if self._master_user_arn is None:
            raise SearchConfigurationError(
                "fine-grained access control needs a master user: call Search.add_bootstrap(function)"
            )
        return self._master_user_arn

    # -- serverless collection ----------------------------------------------------------------

    def _build_collection(self, props: SearchProps) -> None:
        stack = Stack.of(self)
        name = props.domain_name
        resource = [f"collection/{name}"]
        encryption = aoss.CfnSecurityPolicy(
            self,
            "EncryptionPolicy",
            name=f"{name}-enc",
            type="encryption",
            description="Strata chunks: encrypted with an AWS-owned key",
            policy=json.dumps({"Rules": [{"ResourceType": "collection", "Resource": resource}], "AWSOwnedKey": True}),
        )
        network_rule: dict[str, Any] = {"Rules": [{"ResourceType": "collection", "Resource": resource}]}
        if props.vpc is not None:
            assert self.connections is not None
            endpoint = aoss.CfnVpcEndpoint(
                self,
                "VpcEndpoint",
                name=f"{name}-vpce",
                vpc_id=props.vpc.vpc_id,
                subnet_ids=[subnet.subnet_id for subnet in self._subnets],
                security_group_ids=[group.security_group_id for group in self.connections.security_groups],
            )
            network_rule |= {"AllowFromPublic": False, "SourceVPCEs": [endpoint.attr_id]}
        else:
            network_rule["AllowFromPublic"] = True
        network = aoss.CfnSecurityPolicy(
            self,
            "NetworkPolicy",
            name=f"{name}-net",
            type="network",
            description="Strata chunks: the collection endpoint (SigV4 and the data access policy still apply)",
            policy=stack.to_json_string([network_rule]),
        )
        self.data_access_policy = aoss.CfnAccessPolicy(
            self,
            "DataAccessPolicy",
            name=f"{name}-acc",
            type="data",
            description="Strata chunks: exactly the roles granted read or write on the chunk index",
            policy=lazy_string(lambda: stack.to_json_string(self._data_access_rules())),
        )
        collection = aoss.CfnCollection(
            self,
            "Collection",
            name=name,
            type="VECTORSEARCH",
            description="Strata chunk vectors",
            standby_replicas="ENABLED" if props.standby_replicas else "DISABLED",
        )
        collection.node.add_dependency(encryption)
        collection.node.add_dependency(network)
        for policy in (encryption, network, self.data_access_policy, collection):
            policy.apply_removal_policy(props.removal_policy)
        self.collection = collection
        self.endpoint_url = collection.attr_collection_endpoint

    def _data_access_rules(self) -> list[dict[str, Any]]:
        index, collection = f"index/{self._props.domain_name}/{self.index}", f"collection/{self._props.domain_name}"
        readers, writers = self.granted_roles("read"), self.granted_roles("write")
        if not readers and not writers:
            raise SearchConfigurationError("the data access policy needs a principal: grant a role read or write")
        rules = []
        if writers:
            rules.append(
                {
                    "Description": "write: index, fill and prune the chunk index and write its pipeline",
                    "Rules": [
                        {"ResourceType": "index", "Resource": [index], "Permission": list(SERVERLESS_WRITE)},
                        {
                            "ResourceType": "collection",
                            "Resource": [collection],
                            "Permission": list(SERVERLESS_PIPELINE),
                        },
                    ],
                    "Principal": writers,
                }
            )
        if readers:
            rules.append(
                {
                    "Description": "read: query the chunk index",
                    "Rules": [{"ResourceType": "index", "Resource": [index], "Permission": list(SERVERLESS_READ)}],
                    "Principal": readers,
                }
            )
        return rules

    # -- grants -------------------------------------------------------------------------------

    def granted_roles(self, access: Access) -> list[str]:
        """The role ARNs granted ``access`` (a writer is not listed as a reader too)."""
        roles = self._principals[access]
        if access == "read":
            return [arn for key, arn in roles.items() if key not in self._principals["write"]]
        return list(roles.values())

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Query the chunk index: managed, GET/HEAD on it and POST on its ``_search`` (queries
        carry a body), and the ``<index>-read`` role; serverless, read in the data access policy."""
        self._record(grantee, "read")
        if self.domain is not None:
            self.domain.grant_index_read(self.index, grantee)
            self.domain.grant_path_read_write(f"{self.index}/_search", grantee)
        else:
            self._grant_collection_api(grantee)

    def grant_read_write(self, grantee: iam.IGrantable) -> None:
        """Create, fill and prune the chunk index, and write its hybrid-search pipeline (ingest
        ensures both on a cold start): managed, IAM on those paths and the ``<index>-write`` role;
        serverless, write in the data access policy."""
        self._record(grantee, "write")
        if self.domain is not None:
            self.domain.grant_index_read_write(self.index, grantee)
            self.domain.grant_path_read_write("_search/pipeline", grantee)
            self.domain.grant_path_read_write("_search/pipeline/*", grantee)
        else:
            self._grant_collection_api(grantee)

    def allow_from(self, peer: ec2.IConnectable) -> None:
        """Admit HTTPS from ``peer`` (a function in the VPC) to the domain or VPC endpoint."""
        if self.connections is not None:
            self.connections.allow_default_port_from(peer, "HTTPS to the chunk store")

    def _record(self, grantee: iam.IGrantable, access: Access) -> None:
        principal = grantee.grant_principal
        arn = getattr(principal, "role_arn", None)
        if arn is None and (self.mode == "serverless" or self.fine_grained_access):
            raise SearchConfigurationError(
                f"{self.mode} search with per-role access can only grant IAM roles (given {principal})"
            )
        if arn is not None:
            self._principals[access][arn] = arn  # a role's ARN token is one string
        if isinstance(grantee, lambda_.Function) and grantee.is_bound_to_vpc:
            self.allow_from(grantee)

    def _grant_collection_api(self, grantee: iam.IGrantable) -> None:
        assert self.collection is not None
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["aoss:APIAccessAll"], resource_arns=[self.collection.attr_arn]
        )

    # -- bootstrap ----------------------------------------------------------------------------

    def add_bootstrap(self, function: lambda_.IFunction) -> CustomResource:
        """Create the index and the pipeline at deploy time with ``function`` (handler
        :data:`BOOTSTRAP_HANDLER`, this construct's :attr:`environment`), and with fine-grained
        access make its role the master user that maps the grantees' roles."""
        if self.bootstrap is not None:
            raise SearchConfigurationError("add_bootstrap was already called")
        role = function.role
        if role is None:
            raise SearchConfigurationError("the bootstrap function needs an execution role")
        if isinstance(function, lambda_.Function) and function.is_bound_to_vpc:
            self.allow_from(function)
        dependencies: list[Construct] = []
        if self.domain is not None:
            if self.fine_grained_access:
                self._master_user_arn = role.role_arn
            # Exactly the requests bootstrap() and the role mappings send.
            paths = [self.index, f"{self.index}/_mapping", f"_search/pipeline/{self.pipeline}"]
            if self.fine_grained_access:
                paths += [f"_plugins/_security/api/{kind}/{self.index}-{access}"
                          for kind in ("roles", "rolesmapping") for access in ("read", "write")]  # fmt: skip
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=list(BOOTSTRAP_HTTP_ACTIONS), resources=[self._domain_arn(path) for path in paths]
                )
            )
            dependencies.append(self.domain)
        else:
            assert self.collection is not None
            self._record(role, "write")
            self._grant_collection_api(role)
            dependencies += [self.collection, self.data_access_policy]
        properties: dict[str, Any] = {
            "Index": self.index,
            "Pipeline": self.pipeline,
            "Definition": definition_hash(self.index, serverless=self.mode == "serverless"),
            "FineGrainedAccess": "true" if self.fine_grained_access else "false",
        }
        if self.fine_grained_access:
            properties["ReadRoles"] = lazy_list(lambda: self.granted_roles("read"))
            properties["WriteRoles"] = lazy_list(lambda: self.granted_roles("write"))
        resource = CustomResource(
            self,
            "Bootstrap",
            service_token=function.function_arn,
            resource_type="Custom::StrataSearchBootstrap",
            properties=properties,
        )
        for dependency in dependencies:
            resource.node.add_dependency(dependency)
        # The function's grants must be in place before CloudFormation invokes it.
        resource.node.add_dependency(function)
        self.bootstrap = resource
        return resource


def _private_subnets(vpc: ec2.IVpc, selection: ec2.SubnetSelection | None, count: int) -> list[ec2.ISubnet]:
    """``count`` private subnets in distinct zones (all of them, one per zone, when ``count`` is 0)."""
    if selection is None:
        subnet_type = ec2.SubnetType.PRIVATE_WITH_EGRESS if vpc.private_subnets else ec2.SubnetType.PRIVATE_ISOLATED
        selection = ec2.SubnetSelection(subnet_type=subnet_type, one_per_az=True)
    subnets = vpc.select_subnets(
        subnet_type=selection.subnet_type,
        subnet_group_name=selection.subnet_group_name,
        subnets=selection.subnets,
        availability_zones=selection.availability_zones,
        one_per_az=True,
    ).subnets
    if len(subnets) < max(count, 1):
        raise SearchConfigurationError(f"the VPC has {len(subnets)} private subnets in distinct zones; {count} needed")
    return list(subnets[:count] if count else subnets)
