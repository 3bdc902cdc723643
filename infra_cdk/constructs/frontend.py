"""The chat page: a private S3 bucket behind CloudFront (origin access control), plus ``config.json``.

The page is static; what differs per stage, the API's base URL and the optional sign-in, is written
next to it as ``config.json`` at deploy time (the page fetches it at start), so the same files serve
every stage and changing the API never rebuilds the page. ``config.json`` and the content security
policy come from :mod:`strata.config.frontend`, which the local gateway serves the page with too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra_cdk.constructs.buckets import private_bucket
from strata.config.frontend import CONFIG_OBJECT, SignIn, connect_origins, content_security_policy, runtime_config

FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"
# Every file keeps its name across deploys (no content hashes), so a deploy invalidates them all:
# "/*" is billed as one path, and CloudFront's first 1,000 paths a month are free.
INVALIDATED_PATHS = ("/*",)


@dataclass(frozen=True, slots=True)
class FrontendProps:
    """Props of :class:`Frontend`.

    api_base_url
        The OpenAI ``base_url`` the page calls (``<rest api url>v1``, a token at synth time),
        written to ``config.json`` as ``apiBaseUrl``.
    api_origin
        The API's origin, which the page may connect to (the CSP's ``connect-src``).
        Default: cut out of ``api_base_url``. Pass :func:`rest_api_origin` when the API refers to
        this distribution (its CORS origin): an origin cut out of the URL refers to the API's
        stage, which depends on every method, and CloudFormation would see a cycle.
    upload_origins
        Where the page posts the files it uploads (the documents bucket's presigned POST origin),
        added to ``connect-src``. Default none.
    sign_in
        OpenID Connect sign-in for the page: written to ``config.json`` as ``signIn``, and its
        issuer's origin and sign-in origin are added to ``connect-src``. Default none: the page
        offers API keys only.
    source_dir
        The page's files. Default: the repository's ``frontend/``.
    removal_policy
        What deleting the stack does to the access logs. Default ``RETAIN``. (The page's own
        bucket is always emptied and deleted: every deploy rebuilds it from the repository.)
    log_retention
        Retention of the deployment function's log group. Default one month.
    access_log_days
        Days CloudFront's and S3's access logs are kept. Default 90.
    web_acl_arn
        A WAF web ACL with ``CLOUDFRONT`` scope (created in us-east-1) to attach. Default none.
    geo_allowlist
        ISO 3166-1 alpha-2 country codes allowed to load the page; empty: no restriction.
    """

    api_base_url: str
    api_origin: str | None = None
    upload_origins: tuple[str, ...] = ()
    sign_in: SignIn | None = None
    source_dir: Path = FRONTEND_DIR
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    access_log_days: int = 90
    web_acl_arn: str | None = None
    geo_allowlist: tuple[str, ...] = ()


class Frontend(Construct):
    """The page's bucket, its CloudFront distribution and the deployment of its files.

    Attributes
    ----------
    bucket
        Private (public access blocked, no website hosting), SSE-S3, TLS-only; readable only by
        the distribution through its origin access control. Not versioned: every deploy rewrites
        it from the repository, so a rollback is a redeploy and old versions would only cost.
    logs
        Receives the distribution's standard logs (``cloudfront/``) and the bucket's server
        access logs (``s3/``).
    distribution
        HTTPS only (HTTP redirects), ``index.html`` at the root, security headers on every
        response (a Content-Security-Policy whose ``connect-src`` is the page itself, the API, the
        upload origins and, with sign-in, the issuer and its sign-in origin).
    origin
        ``https://<distribution domain>``: the one origin the API's CORS configuration allows.
    deployment
        Copies ``source_dir`` and the generated ``config.json`` (:func:`runtime_config`) and
        invalidates what changed.
    """

    def __init__(self, scope: Construct, construct_id: str, props: FrontendProps) -> None:
        super().__init__(scope, construct_id)
        # CloudFront's standard logging writes with ACLs, so this bucket cannot enforce ownership.
        self.logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery supports SSE-S3 only
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=props.removal_policy,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(props.access_log_days))],
        )
        self.bucket = private_bucket(
            self,
            "Bucket",
            access_logs=self.logs,
            access_logs_prefix="s3/",
            removal_policy=RemovalPolicy.DESTROY,
            versioned=False,
        )
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="Strata chat page: CSP limited to the page, its API, uploads and sign-in",
            security_headers_behavior=_security_headers(
                connect_origins(
                    props.api_origin or url_origin(props.api_base_url),
                    upload_origins=props.upload_origins,
                    sign_in=props.sign_in,
                )
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Strata chat page",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
            web_acl_id=props.web_acl_arn,
            geo_restriction=(
                cloudfront.GeoRestriction.allowlist(*props.geo_allowlist) if props.geo_allowlist else None
            ),
        )
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deployment",
            destination_bucket=self.bucket,
            sources=[
                # A config.json left in the folder (a developer's copy) must not replace the stage's.
                s3deploy.Source.asset(str(props.source_dir), exclude=[CONFIG_OBJECT]),
                s3deploy.Source.json_data(CONFIG_OBJECT, runtime_config(props.api_base_url, props.sign_in)),
            ],
            distribution=self.distribution,
            distribution_paths=list(INVALIDATED_PATHS),
            prune=True,
            retain_on_delete=False,  # empties the bucket first, so that deleting it succeeds
            log_group=logs.LogGroup(
                self, "DeploymentLogs", retention=props.log_retention, removal_policy=RemovalPolicy.DESTROY
            ),
        )


def url_origin(url: str) -> str:
    """``https://host`` of ``url``; works on a deploy-time token as on a plain string."""
    # "https://host/stage/v1".split("/") == ["https:", "", "host", "stage", "v1"]
    return Fn.join("", ["https://", Fn.select(2, Fn.split("/", url))])


def rest_api_origin(rest_api: apigw.IRestApi) -> str:
    """``https://<api id>.execute-api.<region>.<url suffix>``, from the API alone (not its stage)."""
    stack = Stack.of(rest_api)
    return f"https://{rest_api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}"


def _security_headers(connect: list[str]) -> cloudfront.ResponseSecurityHeadersBehavior:
    return cloudfront.ResponseSecurityHeadersBehavior(
        content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
            content_security_policy=content_security_policy(connect), override=True
        ),
        strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
            access_control_max_age=Duration.days(365), include_subdomains=True, override=True
        ),
        content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
        frame_options=cloudfront.ResponseHeadersFrameOptions(
            frame_option=cloudfront.HeadersFrameOption.DENY, override=True
        ),
        referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
            referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
        ),
    )
