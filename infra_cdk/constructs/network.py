"""The optional VPC: private subnets for the functions and the search domain, flow logs on.

Off by default: every service Strata calls is reached over TLS with SigV4, and a NAT gateway
bills by the hour. On, the functions reach S3 and DynamoDB through free gateway endpoints and the
rest (SageMaker, Secrets Manager, JWKS, other model providers) through the NAT gateway(s).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct


@dataclass(frozen=True, slots=True)
class NetworkProps:
    """Props of :class:`Network`: zones, NAT gateways and the flow log retention."""

    max_azs: int = 2
    nat_gateways: int = 1
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


class Network(Construct):
    """A VPC with public and private (egress) subnets, S3/DynamoDB gateway endpoints, flow logs.

    Attributes
    ----------
    vpc
        The VPC; functions go in its ``PRIVATE_WITH_EGRESS`` subnets.
    """

    def __init__(self, scope: Construct, construct_id: str, props: NetworkProps) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=props.max_azs,
            nat_gateways=props.nat_gateways,
            subnet_configuration=[
                # Only the NAT gateways live here, on their own Elastic IPs: nothing gets a public IP by default.
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24, map_public_ip_on_launch=False
                ),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=props.log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
