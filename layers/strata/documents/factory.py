from __future__ import annotations

from botocore.config import Config

from strata import aws
from strata.config import Settings
from strata.documents.registry import DocumentRegistry
from strata.documents.uploads import DocumentUploads

# Presigned posts must be SigV4: SigV2 is refused in every region opened since 2014 and is being
# retired everywhere. Shared objects, so the client cache in strata.aws reuses the client.
PRESIGN_CONFIG = Config(
    signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60
)
# In AWS a post goes to the bucket's regional virtual-hosted endpoint, https://<bucket>.s3.<region>.
# <url suffix>/, in every region (us-east-1 included): the one upload origin the chat page's CSP
# names (infra_cdk.constructs.storage.presigned_post_origin). boto3's default names the global
# https://<bucket>.s3.amazonaws.com/ for a bucket in any region, which redirects for a while after
# the bucket is created. A local endpoint (moto) keeps boto3's default, path style.
AWS_PRESIGN_CONFIG = PRESIGN_CONFIG.merge(
    Config(s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"})
)


def build_document_uploads(settings: Settings) -> DocumentUploads:
    # Imported here: the ingest package imports this one, and what it parses is its business.
    from strata.ingest import SUPPORTED_EXTENSIONS, detect_content_type

    return DocumentUploads(
        aws.client("s3", settings, config=PRESIGN_CONFIG if settings.aws_endpoint_url else AWS_PRESIGN_CONFIG),
        registry=DocumentRegistry(aws.resource("dynamodb", settings).Table(settings.documents_table)),
        bucket=settings.documents_bucket,
        extensions={ext: detect_content_type(f"document{ext}") for ext in SUPPORTED_EXTENSIONS},
        max_bytes=settings.max_document_bytes,
        tenant_prefix=settings.tenant_prefix,
    )
