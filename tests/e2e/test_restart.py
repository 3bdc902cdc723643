"""State that must survive a restart of the local stack: documents, their index, the dev key."""

from __future__ import annotations

from pathlib import Path

from strata.documents import document_id_for
from tests.support import DATASET, start_stack

ELEPHANT = DATASET / "documents" / "s08_set1_a5_elephant.txt"


def test_restart_keeps_the_key_the_registry_and_the_index(tmp_path: Path) -> None:
    key = "tenants/dev/elephant.txt"
    first = start_stack(tmp_path)
    try:
        first.boto3_client("s3").put_object(
            Bucket=first.env["STRATA_DOCUMENTS_BUCKET"], Key=key, Body=ELEPHANT.read_bytes()
        )
        indexed = first.wait_for_status(document_id_for(key), "indexed")
    finally:
        first.stop()

    second = start_stack(tmp_path)
    try:
        assert second.env["STRATA_API_KEY"] == first.env["STRATA_API_KEY"]
        assert second.document(document_id_for(key))["chunks"] == indexed["chunks"]
        body = second.boto3_client("s3").get_object(Bucket=second.env["STRATA_DOCUMENTS_BUCKET"], Key=key)["Body"]
        assert body.read() == ELEPHANT.read_bytes()
        with second.http() as client:
            answer = client.post(
                "/v1/chat/completions",
                json={
                    "model": "default",
                    "max_tokens": 8,
                    "messages": [{"role": "user", "content": "How big are elephants?"}],
                },
            ).json()
        assert answer["strata"]["citations"][0]["source_key"] == key
    finally:
        second.stop()
