"""Ingestion under faults through the local stack: poison files and duplicate deliveries.

Uploads ``--events`` objects to the local stack's bucket (each upload is one S3 notification):
5 % of them poison (an executable, an empty file, a damaged PDF, a PDF with no text layer, a key
of no tenant), the rest small real documents (paragraphs of wiki-qa articles). For 10 % of the
events the same notification is delivered a second time, straight to the ingest queue, as S3
and SQS may do. Then it waits until every document is settled and counts:

- documents lost (a good file not ``indexed``) and duplicated ingestions (``attempts`` above 1:
  a duplicate delivery that was applied again), chunks in the store against the registry's count;
- poison files not ``failed`` with a reason, or not parked in the DLQ (with the reason);
- good files wrongly in the DLQ.

    .venv/bin/python -m bench.ingest_faults [--events 1000] [--poison 0.05] [--duplicates 0.1]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from bench.common import DATASET, machine
from strata.documents import UNATTRIBUTED_TENANT, document_id_for
from strata.ingest.handler import REASON_ATTRIBUTE
from strata.retrieval import LocalVectorStore
from strata_local.harness import RunningStack, start_stack, wait_until

TENANTS = ("acme", "globex", "initech")
NO_TEXT_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def paragraphs() -> list[str]:
    """Real text: the paragraphs of the wiki-qa articles that are long enough to say something."""
    found = []
    for path in sorted((DATASET / "documents").glob("*.txt")):
        text = path.read_text(errors="replace")
        found.extend(p.strip() for p in text.split("\n\n") if 200 <= len(p.strip()) <= 1200)
    return found


def poison(i: int) -> tuple[str, bytes, str]:
    """(key, body, what): a file that can never be ingested."""
    tenant = TENANTS[i % len(TENANTS)]
    kinds = [
        (f"tenants/{tenant}/poison/{i}.exe", b"MZ\x90\x00" * 64, "executable"),
        (f"tenants/{tenant}/poison/{i}.txt", b"", "empty"),
        (f"tenants/{tenant}/poison/{i}.pdf", b"%PDF-1.7 damaged " * 8, "damaged pdf"),
        (f"tenants/{tenant}/poison/{i}-scan.pdf", NO_TEXT_PDF, "no text layer"),
        (f"tenants/no-file-{i}.txt", b"a file of no tenant", "no tenant"),
    ]
    return kinds[i % len(kinds)]


def notification(bucket: str, key: str, etag: str, size: int) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/"), "eTag": etag, "size": size}},
    }
    return json.dumps({"Records": [record]})


def dead_letters(stack: RunningStack) -> dict[str, str]:
    sqs = stack.boto3_client("sqs")
    url = sqs.get_queue_url(QueueName="strata-ingest-dlq")["QueueUrl"]
    parked: dict[str, str] = {}
    while messages := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=300
    ).get("Messages", []):
        for message in messages:
            reason = message.get("MessageAttributes", {}).get(REASON_ATTRIBUTE, {}).get("StringValue", "")
            for record in json.loads(message["Body"]).get("Records", []):
                parked[unquote_plus(record["s3"]["object"]["key"])] = reason
    return parked


def registry_items(stack: RunningStack) -> dict[str, dict[str, Any]]:
    table = stack.boto3_client("dynamodb")
    items: dict[str, dict[str, Any]] = {}
    for page in table.get_paginator("scan").paginate(TableName="strata-documents"):
        for item in page["Items"]:
            plain = {name: next(iter(value.values())) for name, value in item.items()}
            items[plain["source_key"]] = plain
    return items


def run(events: int, poison_share: float, duplicate_share: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    texts = paragraphs()
    n_poison = round(events * poison_share)
    files = [poison(i) for i in range(n_poison)]
    for i in range(events - n_poison):
        tenant = TENANTS[i % len(TENANTS)]
        key = f"tenants/{tenant}/notes/{i:04d} {rng.choice('abc')}+note.txt"  # a space and a plus: encoded keys
        files.append((key, rng.choice(texts).encode(), "good"))
    rng.shuffle(files)
    with tempfile.TemporaryDirectory() as workdir:
        stack = start_stack(Path(workdir), timeout_s=600)
        try:
            s3, sqs = stack.boto3_client("s3"), stack.boto3_client("sqs")
            bucket = stack.env["STRATA_DOCUMENTS_BUCKET"]
            queue = sqs.get_queue_url(QueueName="strata-ingest")["QueueUrl"]
            began = time.monotonic()
            duplicated = 0
            for key, body, _ in files:
                etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
                if rng.random() < duplicate_share:
                    sqs.send_message(QueueUrl=queue, MessageBody=notification(bucket, key, etag, len(body)))
                    duplicated += 1
            uploaded_s = time.monotonic() - began

            def settled() -> dict[str, dict[str, Any]] | None:
                items = registry_items(stack)
                done = [items.get(key, {}).get("status") in ("indexed", "failed") for key, _, _ in files]
                print(f"\rsettled {sum(done)}/{len(files)}", end="", flush=True)
                return items if all(done) else None

            items = wait_until(settled, timeout_s=3600, interval_s=5, what="every document settled")
            print()
            elapsed_s = time.monotonic() - began
            time.sleep(2)  # the last parked messages
            parked = dead_letters(stack)
            good = [key for key, _, what in files if what == "good"]
            bad = [(key, what) for key, _, what in files if what != "good"]
            store = LocalVectorStore(stack.state_dir / "vectors.db")
            try:
                stored_chunks = sum(store.count(tenant) for tenant in TENANTS)
            finally:
                store.close()
            registered_chunks = sum(int(items[key].get("chunks", 0)) for key in good)
            return {
                "events": len(files),
                "poison": len(bad),
                "duplicate_deliveries": duplicated,
                "upload_s": round(uploaded_s, 1),
                "settled_s": round(elapsed_s, 1),
                "lost": sum(items[key]["status"] != "indexed" for key in good),
                "ingested_more_than_once": sum(int(items[key].get("attempts", 1)) > 1 for key in good),
                "stored_chunks": stored_chunks,
                "registered_chunks": registered_chunks,
                "poison_not_failed_with_reason": sum(
                    not (items[key]["status"] == "failed" and items[key].get("reason")) for key, _ in bad
                ),
                "poison_not_in_dlq": sum(key not in parked or not parked[key] for key, _ in bad),
                "good_in_dlq": sum(key in parked for key in good),
                "no_tenant_recorded": sum(
                    items[key].get("tenant") == UNATTRIBUTED_TENANT for key, what in bad if what == "no tenant"
                ),
                "document_ids_distinct": len({document_id_for(key) for key in good}) == len(good),
            }
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--poison", type=float, default=0.05)
    parser.add_argument("--duplicates", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    result = run(args.events, args.poison, args.duplicates, args.seed)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
