"""Uploads and deletions through the API's library, against moto's S3 and DynamoDB.

moto intercepts raw ``requests`` calls to AWS hosts too, so an upload really is an HTTP form post
to the presigned URL. moto does not enforce a POST policy's conditions, though: those are checked
by decoding the signed policy itself.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from strata.config import Settings
from strata.documents import (
    DocumentNotFoundError,
    DocumentRegistry,
    DocumentStatus,
    DocumentUpload,
    DocumentUploads,
    InvalidUploadError,
    build_document_uploads,
    document_id_for,
    parse_source_key,
    validate_document_path,
)
from strata.ingest import SUPPORTED_EXTENSIONS
from strata_local.aws import create_buckets, create_tables

BUCKET = "strata-documents"
MAX_BYTES = 1000


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        create_buckets(s3)
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        registry = DocumentRegistry(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-documents"))
        uploads = build_document_uploads(Settings(max_document_bytes=MAX_BYTES))
        yield {"s3": s3, "registry": registry, "uploads": uploads}


def policy_of(upload: DocumentUpload) -> dict[str, Any]:
    return json.loads(base64.b64decode(upload.upload.fields["policy"]))


def post_file(upload: DocumentUpload, data: bytes, **overrides: str) -> requests.Response:
    # The file goes last, as S3 requires; requests puts ``files`` after ``data``.
    return requests.post(
        upload.upload.url, data={**upload.upload.fields, **overrides}, files={"file": ("f", data)}, timeout=10
    )


def test_a_presigned_post_pins_bucket_key_type_and_size(aws: dict[str, Any]) -> None:
    upload = aws["uploads"].presign("acme", "notes/q3 report.pdf")

    assert upload.source_key == "tenants/acme/notes/q3 report.pdf"
    assert upload.document_id == document_id_for(upload.source_key)
    assert (upload.upload.method, upload.content_type, upload.max_bytes) == ("POST", "application/pdf", MAX_BYTES)
    fields = upload.upload.fields
    assert fields["key"] == upload.source_key
    assert fields["Content-Type"] == "application/pdf"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256", "presigned posts are SigV4"
    policy = policy_of(upload)
    conditions = policy["conditions"]
    assert ["content-length-range", 1, MAX_BYTES] in conditions
    assert {"bucket": BUCKET} in conditions
    assert {"key": upload.source_key} in conditions, "an exact key: no starts-with that would open the prefix"
    assert {"Content-Type": "application/pdf"} in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    expiry = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(0) < expiry - datetime.now(UTC) <= timedelta(seconds=upload.expires_in)


def test_a_file_posted_to_the_presigned_url_lands_under_the_tenants_key(aws: dict[str, Any]) -> None:
    upload = aws["uploads"].presign("acme", "zoo/kangaroo.md")

    response = post_file(upload, b"# Kangaroos\n\nThey hop.")

    assert response.status_code == 204, response.text
    stored = aws["s3"].get_object(Bucket=BUCKET, Key="tenants/acme/zoo/kangaroo.md")
    assert stored["Body"].read() == b"# Kangaroos\n\nThey hop."
    assert stored["ContentType"] == "text/markdown"


def test_a_declared_content_type_is_the_one_the_policy_binds(aws: dict[str, Any]) -> None:
    upload = aws["uploads"].presign("acme", "a.txt", content_type="text/plain; charset=windows-1252")

    assert {"Content-Type": "text/plain; charset=windows-1252"} in policy_of(upload)["conditions"]
    assert post_file(upload, "café".encode("cp1252")).status_code == 204
    assert aws["s3"].head_object(Bucket=BUCKET, Key="tenants/acme/a.txt")["ContentType"].endswith("windows-1252")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd.txt", "leading '/'"),
        ("../globex/secrets.txt", "'..'"),
        ("notes/../../globex/a.txt", "'..'"),
        ("notes/./a.txt", "'.'"),
        ("notes//a.txt", "empty"),
        ("notes/", "empty"),
        ("notes\\a.txt", "separate folders with '/'"),
        ("a\nb.txt", "control"),
        ("a\x00.txt", "control"),
        ("invoice\u202etxt.pdf", "formatting"),
        (" notes/a.txt", "whitespace"),
        ("a" * 600 + ".txt", "604 characters"),
        ("setup.exe", "'.exe' file"),
        ("README", "without an extension"),
    ],
)
def test_paths_that_cannot_name_a_document_are_refused_naming_the_field(path: str, reason: str) -> None:
    with pytest.raises(InvalidUploadError) as raised:
        validate_document_path(path, extensions=SUPPORTED_EXTENSIONS)
    assert raised.value.param == "path"
    assert reason in str(raised.value)


@pytest.mark.parametrize("path", ["q3.pdf", "Berichte/Übersicht Q3.PDF", "a/b/c/d.e.md", "notes-2024_v2 (final).html"])
def test_ordinary_paths_are_accepted(path: str) -> None:
    assert validate_document_path(path, extensions=SUPPORTED_EXTENSIONS) == path


def test_a_path_too_long_for_an_s3_key_and_a_bad_content_type_are_refused(aws: dict[str, Any]) -> None:
    with pytest.raises(InvalidUploadError, match="900 bytes") as raised:
        aws["uploads"].presign("acme", "€" * 400 + ".txt")  # 404 characters, 1204 bytes
    assert raised.value.param == "path"
    longest = aws["uploads"].presign("a" * 63, "€" * 298 + ".txt")  # 898 bytes under the longest tenant
    assert len(longest.source_key.encode()) <= 1024
    with pytest.raises(InvalidUploadError) as raised:
        aws["uploads"].presign("acme", "a.txt", content_type="text/plain\r\nx-amz-acl: public-read")
    assert raised.value.param == "content_type"


def registered(aws: dict[str, Any], key: str) -> str:
    aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"text")
    source = parse_source_key(key)
    aws["registry"].mark_indexing(source, sequencer=None, size_bytes=4)
    aws["registry"].mark_indexed(source, title="t", chunks=1, content_type="text/plain", etag="e")
    return source.document_id


def keys(aws: dict[str, Any]) -> list[str]:
    return [o["Key"] for o in aws["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_delete_removes_the_object_and_marks_the_record_deleting(aws: dict[str, Any]) -> None:
    document_id = registered(aws, "tenants/acme/a.txt")
    registered(aws, "tenants/acme/b.txt")

    record = aws["uploads"].delete("acme", document_id)

    assert (record.document_id, record.status) == (document_id, DocumentStatus.DELETING)
    assert aws["registry"].get("acme", document_id).status == DocumentStatus.DELETING
    assert keys(aws) == ["tenants/acme/b.txt"]


def test_delete_of_an_unknown_or_another_tenants_document_is_not_found(aws: dict[str, Any]) -> None:
    theirs = registered(aws, "tenants/globex/plans.txt")

    for document_id in (theirs, "doc_000000000000000000000000"):
        with pytest.raises(DocumentNotFoundError):
            aws["uploads"].delete("acme", document_id)
    assert keys(aws) == ["tenants/globex/plans.txt"]
    assert aws["registry"].get("globex", theirs).status == DocumentStatus.INDEXED


def test_a_record_pointing_outside_its_tenant_never_deletes_that_object(aws: dict[str, Any]) -> None:
    registered(aws, "tenants/globex/plans.txt")
    aws["registry"]._table.put_item(
        Item={
            "tenant": "acme",
            "document_id": "doc_forged",
            "source_key": "tenants/globex/plans.txt",
            "status": "indexed",
            "updated_at": "2024-01-01T00:00:00+00:00",
        }
    )
    with pytest.raises(DocumentNotFoundError):
        aws["uploads"].delete("acme", "doc_forged")
    assert keys(aws) == ["tenants/globex/plans.txt"]


def test_a_record_already_removed_by_ingestion_is_not_brought_back(aws: dict[str, Any]) -> None:
    assert aws["registry"].mark_deleting("acme", document_id_for("tenants/acme/gone.txt")) is None
    assert aws["registry"].list("acme") == []


def test_uploads_refuse_settings_that_would_grant_nothing() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        DocumentUploads(object(), registry=object(), bucket=BUCKET, extensions={}, max_bytes=0)  # type: ignore[arg-type]
