"""The search construct in small standalone stacks (managed, managed in a VPC, Serverless, Serverless
in a VPC), each synthesized once per module with cdk-nag's AwsSolutions checks: encryption and TLS,
the access policy, fine-grained access control, the Serverless policies, the IAM grants per mode,
the bootstrap custom resource, and the exact cdk-nag findings the construct leaves for nag.py."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
pytest.importorskip("aws_cdk", reason="install the 'infra' extra")
pytest.importorskip("cdk_nag", reason="install the 'infra' extra")

from aws_cdk import App, Aspects, Stack  # noqa: E402
from aws_cdk import aws_ec2 as ec2  # noqa: E402
from aws_cdk import aws_iam as iam  # noqa: E402
from aws_cdk import aws_lambda as lambda_  # noqa: E402
from aws_cdk.assertions import Annotations, Match, Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra_cdk.constructs.search import (  # noqa: E402
    BOOTSTRAP_HANDLER,
    SERVERLESS_PIPELINE,
    SERVERLESS_READ,
    SERVERLESS_WRITE,
    Search,
    SearchConfigurationError,
    SearchProps,
    definition_hash,
)

INDEX = "strata-chunks"
NAME = "strata-test-search"
ENV = {"account": "111111111111", "region": "us-east-1"}


@dataclass(frozen=True)
class Built:
    stack: Stack
    search: Search
    template: Template
    findings: set[tuple[str, str]]
    """(construct path below the stack, rule[finding]) of every AwsSolutions error and warning."""

    def role(self, function: str) -> str:
        return next(
            lid
            for lid, r in self.template.find_resources("AWS::IAM::Role").items()
            if lid.startswith(f"{function}ServiceRole")
        )

    def function(self, name: str) -> str:
        return next(lid for lid in self.template.find_resources("AWS::Lambda::Function") if lid.startswith(name))

    def statements(self, function: str) -> list[dict[str, Any]]:
        role = self.role(function)
        return [
            statement
            for policy in self.template.find_resources("AWS::IAM::Policy").values()
            if {"Ref": role} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]

    def single(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        [(lid, resource)] = self.template.find_resources(resource_type).items()
        return lid, resource


def _stack(mode: str, *, vpc: bool, **props: Any) -> tuple[App, Stack, Search]:
    app = App()
    stack = Stack(app, f"Search{mode.title()}{'Vpc' if vpc else ''}", env=ENV)
    network = (
        ec2.Vpc(
            stack,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
        )
        if vpc
        else None
    )
    if mode == "managed":
        props.setdefault("fine_grained_access", True)
    search = Search(stack, "Search", SearchProps(index=INDEX, domain_name=NAME, mode=mode, vpc=network, **props))

    def function(name: str, handler: str = "app.handler") -> lambda_.Function:
        return lambda_.Function(
            stack,
            name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler=handler,
            code=lambda_.Code.from_inline("def handler(event, context): pass"),
            vpc=network,
            environment=search.environment,
        )

    search.grant_read(function("Chat"))
    search.grant_read(function("Api"))
    search.grant_read_write(function("Ingest"))
    search.add_bootstrap(function("Bootstrap", BOOTSTRAP_HANDLER))
    return app, stack, search


def _build(mode: str, *, vpc: bool = False) -> Built:
    app, stack, search = _stack(mode, vpc=vpc)
    Aspects.of(app).add(AwsSolutionsChecks())
    template = Template.from_stack(stack)
    annotations = Annotations.from_stack(stack)
    messages = [
        *annotations.find_error("*", Match.string_like_regexp("AwsSolutions-")),
        *annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-")),
    ]
    prefix = f"/{stack.stack_name}/"
    findings = {(m.id.removeprefix(prefix), str(m.entry.data).split(": ")[0]) for m in messages}
    return Built(stack=stack, search=search, template=template, findings=findings)


@pytest.fixture(scope="module")
def managed() -> Built:
    return _build("managed")


@pytest.fixture(scope="module")
def managed_vpc() -> Built:
    return _build("managed", vpc=True)


@pytest.fixture(scope="module")
def serverless() -> Built:
    return _build("serverless")


@pytest.fixture(scope="module")
def serverless_vpc() -> Built:
    return _build("serverless", vpc=True)


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def _render(value: Any) -> str:
    """A template string (``Fn::Join`` of literals and ``GetAtt``/``Ref``) as text, each reference
    written ``<LogicalId.Attribute>`` or ``<LogicalId>``."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    raise AssertionError(f"unexpected template value {value}")


# -- managed domain -------------------------------------------------------------------------------


def test_managed_domain_encrypts_at_rest_and_between_nodes_and_serves_only_https_tls_1_2(managed: Built) -> None:
    managed.template.has_resource_properties(
        "AWS::OpenSearchService::Domain",
        {
            "DomainName": NAME,
            "EncryptionAtRestOptions": {"Enabled": True},
            "NodeToNodeEncryptionOptions": {"Enabled": True},
            "DomainEndpointOptions": {"EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07"},
        },
    )


def test_managed_domain_access_policy_trusts_only_this_account_so_iam_decides(managed: Built) -> None:
    _, domain = managed.single("AWS::OpenSearchService::Domain")
    [statement] = domain["Properties"]["AccessPolicies"]["Statement"]

    assert statement["Effect"] == "Allow"
    assert _render(statement["Principal"]["AWS"]) == "arn:<AWS::Partition>:iam::111111111111:root"
    assert statement["Action"] == "es:ESHttp*"
    assert _render(statement["Resource"]) == f"arn:<AWS::Partition>:es:us-east-1:111111111111:domain/{NAME}/*"


def test_fine_grained_access_makes_the_bootstrap_role_the_iam_master_user(managed: Built) -> None:
    _, domain = managed.single("AWS::OpenSearchService::Domain")

    assert domain["Properties"]["AdvancedSecurityOptions"] == {
        "Enabled": True,
        "InternalUserDatabaseEnabled": False,
        "MasterUserOptions": {"MasterUserARN": {"Fn::GetAtt": [managed.role("Bootstrap"), "Arn"]}},
    }


def test_bootstrap_resource_maps_exactly_the_granted_roles_and_runs_after_the_domain(managed: Built) -> None:
    lid, resource = managed.single("Custom::StrataSearchBootstrap")
    domain, _ = managed.single("AWS::OpenSearchService::Domain")

    def arn(function: str) -> dict[str, Any]:
        return {"Fn::GetAtt": [managed.role(function), "Arn"]}

    assert resource["Properties"] == {
        "ServiceToken": {"Fn::GetAtt": [managed.function("Bootstrap"), "Arn"]},
        "Index": INDEX,
        "Pipeline": f"{INDEX}-hybrid",
        "Definition": definition_hash(INDEX, serverless=False),
        "FineGrainedAccess": "true",
        "ReadRoles": [arn("Chat"), arn("Api")],
        "WriteRoles": [arn("Ingest")],
    }
    policy = next(
        lid for lid in managed.template.find_resources("AWS::IAM::Policy") if lid.startswith("BootstrapServiceRole")
    )
    # After the domain, and after the bootstrap role may call it.
    assert {domain, policy} <= set(resource["DependsOn"])
    # Delete is answered by the handler (it keeps the index); the resource itself holds no data.
    assert resource["DeletionPolicy"] == "Delete"


def test_bootstrap_role_may_send_only_the_bootstrap_requests(managed: Built) -> None:
    statements = [st for st in managed.statements("Bootstrap") if any(a.startswith("es:") for a in _actions(st))]
    domain = f"arn:<AWS::Partition>:es:us-east-1:111111111111:domain/{NAME}"

    [statement] = statements
    assert sorted(_actions(statement)) == ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPut"]
    assert sorted(_render(resource) for resource in statement["Resource"]) == sorted(
        f"{domain}/{path}"
        for path in (
            INDEX,
            f"{INDEX}/_mapping",
            f"_search/pipeline/{INDEX}-hybrid",
            f"_plugins/_security/api/roles/{INDEX}-read",
            f"_plugins/_security/api/roles/{INDEX}-write",
            f"_plugins/_security/api/rolesmapping/{INDEX}-read",
            f"_plugins/_security/api/rolesmapping/{INDEX}-write",
        )
    )


def test_managed_grants_are_iam_policies_scoped_to_the_chunk_index_paths(managed: Built) -> None:
    domain, _ = managed.single("AWS::OpenSearchService::Domain")

    def grants(function: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for statement in managed.statements(function):
            for action in _actions(statement):
                resources = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
                found.setdefault(action, set()).update(_render(r) for r in resources)
        return found

    base = f"<{domain}.Arn>"
    chat = grants("Chat")
    assert chat == {
        "es:ESHttpGet": {f"{base}/{INDEX}", f"{base}/{INDEX}/*", f"{base}/{INDEX}/_search"},
        "es:ESHttpHead": {f"{base}/{INDEX}", f"{base}/{INDEX}/*", f"{base}/{INDEX}/_search"},
        "es:ESHttpDelete": {f"{base}/{INDEX}/_search"},
        "es:ESHttpPost": {f"{base}/{INDEX}/_search"},
        "es:ESHttpPut": {f"{base}/{INDEX}/_search"},
        "es:ESHttpPatch": {f"{base}/{INDEX}/_search"},
    }
    assert grants("Api") == chat
    ingest = grants("Ingest")
    assert ingest["es:ESHttpPut"] == {
        f"{base}/{INDEX}",
        f"{base}/{INDEX}/*",
        f"{base}/_search/pipeline",
        f"{base}/_search/pipeline/*",
    }
    assert not [action for action in ingest if action.startswith("aoss:")]


def test_managed_domain_in_a_vpc_sits_in_one_private_subnet_behind_its_security_group(managed_vpc: Built) -> None:
    _, domain = managed_vpc.single("AWS::OpenSearchService::Domain")
    vpc_options = domain["Properties"]["VPCOptions"]
    group = managed_vpc.stack.get_logical_id(
        managed_vpc.search.connections.security_groups[0].node.default_child  # type: ignore[union-attr]
    )

    assert len(vpc_options["SubnetIds"]) == 1
    assert vpc_options["SecurityGroupIds"] == [{"Fn::GetAtt": [group, "GroupId"]}]
    ingress = managed_vpc.template.find_resources("AWS::EC2::SecurityGroupIngress")
    sources = {
        _render(rule["Properties"]["SourceSecurityGroupId"])
        for rule in ingress.values()
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
        and (rule["Properties"]["FromPort"], rule["Properties"]["ToPort"]) == (443, 443)
    }
    functions = {"Chat", "Api", "Ingest", "Bootstrap"}
    assert {re.sub(r"SecurityGroup[0-9A-F]{8}\.GroupId>$", "", s).lstrip("<") for s in sources} == functions
    _, sg = next(
        (lid, r) for lid, r in managed_vpc.template.find_resources("AWS::EC2::SecurityGroup").items() if lid == group
    )
    assert "SecurityGroupIngress" not in sg["Properties"]  # no CIDR-wide rule


# -- serverless collection ------------------------------------------------------------------------


def test_serverless_collection_is_a_vector_collection_without_standby_replicas(serverless: Built) -> None:
    _, collection = serverless.single("AWS::OpenSearchServerless::Collection")
    encryption, network = (
        next(
            (lid, r)
            for lid, r in serverless.template.find_resources("AWS::OpenSearchServerless::SecurityPolicy").items()
            if r["Properties"]["Type"] == kind
        )
        for kind in ("encryption", "network")
    )

    assert collection["Properties"] | {"Description": None} == {
        "Name": NAME,
        "Type": "VECTORSEARCH",
        "StandbyReplicas": "DISABLED",
        "Description": None,
    }
    assert set(collection["DependsOn"]) >= {encryption[0], network[0]}
    assert json.loads(encryption[1]["Properties"]["Policy"]) == {
        "Rules": [{"ResourceType": "collection", "Resource": [f"collection/{NAME}"]}],
        "AWSOwnedKey": True,
    }
    assert json.loads(_render(network[1]["Properties"]["Policy"])) == [
        {"Rules": [{"ResourceType": "collection", "Resource": [f"collection/{NAME}"]}], "AllowFromPublic": True}
    ]
    assert collection["DeletionPolicy"] == "Retain"


def test_serverless_in_a_vpc_is_reached_only_through_its_vpc_endpoint(serverless_vpc: Built) -> None:
    endpoint, resource = serverless_vpc.single("AWS::OpenSearchServerless::VpcEndpoint")
    [network] = [
        r
        for r in serverless_vpc.template.find_resources("AWS::OpenSearchServerless::SecurityPolicy").values()
        if r["Properties"]["Type"] == "network"
    ]

    assert json.loads(_render(network["Properties"]["Policy"])) == [
        {
            "Rules": [{"ResourceType": "collection", "Resource": [f"collection/{NAME}"]}],
            "AllowFromPublic": False,
            "SourceVPCEs": [f"<{endpoint}.Id>"],
        }
    ]
    assert len(resource["Properties"]["SubnetIds"]) == 2


def test_serverless_data_access_policy_names_exactly_the_granted_roles(serverless: Built) -> None:
    _, policy = serverless.single("AWS::OpenSearchServerless::AccessPolicy")
    rules = json.loads(_render(policy["Properties"]["Policy"]))

    def role(function: str) -> str:
        return f"<{serverless.role(function)}.Arn>"

    index, collection = f"index/{NAME}/{INDEX}", f"collection/{NAME}"
    assert policy["Properties"]["Type"] == "data"
    assert [(rule["Principal"], rule["Rules"]) for rule in rules] == [
        (
            [role("Ingest"), role("Bootstrap")],
            [
                {"ResourceType": "index", "Resource": [index], "Permission": list(SERVERLESS_WRITE)},
                {"ResourceType": "collection", "Resource": [collection], "Permission": list(SERVERLESS_PIPELINE)},
            ],
        ),
        (
            [role("Chat"), role("Api")],
            [{"ResourceType": "index", "Resource": [index], "Permission": list(SERVERLESS_READ)}],
        ),
    ]
    assert set(SERVERLESS_WRITE) >= {"aoss:WriteDocument", "aoss:CreateIndex", "aoss:UpdateIndex", *SERVERLESS_READ}


def test_serverless_iam_grants_are_api_access_on_the_collection_only(serverless: Built) -> None:
    collection, _ = serverless.single("AWS::OpenSearchServerless::Collection")
    for function in ("Chat", "Api", "Ingest", "Bootstrap"):
        search = [
            st for st in serverless.statements(function) if any(a.split(":")[0] in ("es", "aoss") for a in _actions(st))
        ]
        assert [(_actions(st), st["Resource"]) for st in search] == [
            (["aoss:APIAccessAll"], {"Fn::GetAtt": [collection, "Arn"]})
        ], function

    lid, resource = serverless.single("Custom::StrataSearchBootstrap")
    assert resource["Properties"]["FineGrainedAccess"] == "false"
    assert "ReadRoles" not in resource["Properties"]
    policy, _ = serverless.single("AWS::OpenSearchServerless::AccessPolicy")
    assert {collection, policy} <= set(resource["DependsOn"])


def test_environment_tells_the_functions_where_the_store_is_in_each_mode(managed: Built, serverless: Built) -> None:
    assert set(managed.search.environment) == {
        "STRATA_VECTOR_STORE",
        "STRATA_OPENSEARCH_ENDPOINT",
        "STRATA_OPENSEARCH_INDEX",
        "STRATA_OPENSEARCH_SERVERLESS",
    }
    bootstrap = managed.template.find_resources("AWS::Lambda::Function")[managed.function("Bootstrap")]
    variables = bootstrap["Properties"]["Environment"]["Variables"]
    domain, _ = managed.single("AWS::OpenSearchService::Domain")
    assert variables["STRATA_OPENSEARCH_SERVERLESS"] == "false"
    assert variables["STRATA_OPENSEARCH_INDEX"] == INDEX
    assert _render(variables["STRATA_OPENSEARCH_ENDPOINT"]) == f"https://<{domain}.DomainEndpoint>"

    collection, _ = serverless.single("AWS::OpenSearchServerless::Collection")
    variables = serverless.template.find_resources("AWS::Lambda::Function")[serverless.function("Chat")]["Properties"][
        "Environment"
    ]["Variables"]
    assert variables["STRATA_OPENSEARCH_SERVERLESS"] == "true"
    assert variables["STRATA_OPENSEARCH_ENDPOINT"] == {"Fn::GetAtt": [collection, "CollectionEndpoint"]}


# -- cdk-nag --------------------------------------------------------------------------------------

_INDEX_WILDCARD = f"AwsSolutions-IAM5[Resource::<SearchDomain62FD613E.Arn>/{INDEX}/*]"
_PIPELINE_WILDCARD = "AwsSolutions-IAM5[Resource::<SearchDomain62FD613E.Arn>/_search/pipeline/*]"
_DOMAIN = "Search/Domain/Resource"
NAG_FINDINGS = {
    "managed": {
        (_DOMAIN, "AwsSolutions-OS1"),  # not in a VPC (the vpc prop places it in one)
        (_DOMAIN, "AwsSolutions-OS3"),  # access by IAM identity, not by source IP
        (_DOMAIN, "AwsSolutions-OS4"),  # no dedicated master nodes at the development size
        (_DOMAIN, "AwsSolutions-OS7"),  # one data node: no zone awareness
        ("Chat/ServiceRole/DefaultPolicy/Resource", _INDEX_WILDCARD),
        ("Api/ServiceRole/DefaultPolicy/Resource", _INDEX_WILDCARD),
        ("Ingest/ServiceRole/DefaultPolicy/Resource", _INDEX_WILDCARD),
        ("Ingest/ServiceRole/DefaultPolicy/Resource", _PIPELINE_WILDCARD),
    },
    "managed_vpc": {
        (_DOMAIN, "AwsSolutions-OS3"),
        (_DOMAIN, "AwsSolutions-OS4"),
        (_DOMAIN, "AwsSolutions-OS7"),
        ("Chat/ServiceRole/DefaultPolicy/Resource", _INDEX_WILDCARD),
        ("Api/ServiceRole/DefaultPolicy/Resource", _INDEX_WILDCARD),
        ("Ingest/ServiceRole/DefaultPolicy/Resource", _INDEX_WILDCARD),
        ("Ingest/ServiceRole/DefaultPolicy/Resource", _PIPELINE_WILDCARD),
    },
    "serverless": set(),
    "serverless_vpc": set(),
}


@pytest.mark.parametrize("variant", sorted(NAG_FINDINGS))
def test_cdk_nag_findings_of_the_construct_and_its_grants_are_the_reviewed_ones(
    variant: str, request: pytest.FixtureRequest
) -> None:
    built: Built = request.getfixturevalue(variant)
    ours = {
        (path, rule)
        for path, rule in built.findings
        if path.startswith("Search/") or ("Search" in rule and rule.startswith("AwsSolutions-IAM5"))
    }
    assert ours == NAG_FINDINGS[variant]


# -- props and wiring errors (no synthesis) ------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "fine_grained", "needs_bootstrap"),
    [("managed", True, True), ("serverless", False, True), ("managed", False, False)],
)
def test_per_role_access_without_its_bootstrap_fails_validation(
    mode: str, fine_grained: bool, needs_bootstrap: bool
) -> None:
    stack = Stack(App(), "NoBootstrap", env=ENV)
    props = SearchProps(index=INDEX, domain_name=NAME, mode=mode, fine_grained_access=fine_grained)  # type: ignore[arg-type]
    search = Search(stack, "Search", props)

    assert any("add_bootstrap" in error for error in search.node.validate()) is needs_bootstrap


def test_per_role_access_refuses_a_principal_that_is_not_a_role() -> None:
    stack = Stack(App(), "NotARole", env=ENV)
    search = Search(stack, "Search", SearchProps(index=INDEX, domain_name=NAME, mode="serverless"))

    with pytest.raises(SearchConfigurationError, match="only grant IAM roles"):
        search.grant_read(iam.AccountRootPrincipal())


def test_standby_replicas_are_an_option_of_the_serverless_mode() -> None:
    stack = Stack(App(), "Standby", env=ENV)
    search = Search(
        stack, "Search", SearchProps(index=INDEX, domain_name=NAME, mode="serverless", standby_replicas=True)
    )

    assert search.collection is not None and search.collection.standby_replicas == "ENABLED"
    assert search.domain is None


@pytest.mark.parametrize(
    ("props", "message"),
    [({"mode": "elastic"}, "mode must be"), ({"domain_name": "ab"}, "3-28 characters")],
)
def test_props_are_validated(props: dict[str, Any], message: str) -> None:
    with pytest.raises(SearchConfigurationError, match=message):
        SearchProps(**({"index": INDEX, "domain_name": NAME} | props))
