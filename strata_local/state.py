"""Keeps the local AWS state (tables, bucket objects) across restarts of the local stack.

moto holds everything in memory, so the stack snapshots it under ``.strata/state/`` while it
runs and on shutdown, and restores it before the bucket notification is switched on (restoring
objects must not re-trigger ingestion: the vector store on disk already has them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from strata.config import RESOURCES, StackResources

logger = logging.getLogger(__name__)


class LocalStateStore:
    def __init__(self, directory: Path, *, s3: Any, dynamodb: Any, resources: StackResources = RESOURCES) -> None:
        self._dir = directory
        self._objects_dir = directory / "s3"
        self._s3 = s3
        self._dynamodb = dynamodb
        self._resources = resources
        self._lock = threading.Lock()

    @property
    def _buckets(self) -> tuple[str, ...]:
        return (self._resources.documents_bucket.name, self._resources.interactions_bucket.name)

    def save(self) -> None:
        with self._lock:
            self._dir.mkdir(parents=True, exist_ok=True)
            for spec in self._resources.tables:
                items = self._scan(spec.name)
                _write_json(self._dir / f"table-{spec.name}.json", items)
            for bucket in self._buckets:
                self._save_objects(bucket)

    def restore(self) -> None:
        for spec in self._resources.tables:
            path = self._dir / f"table-{spec.name}.json"
            if path.exists():
                keys = {spec.partition_key, *([spec.sort_key] if spec.sort_key else [])}
                items = json.loads(path.read_text())
                kept = [item for item in items if keys <= item.keys()]
                if len(kept) < len(items):  # saved by an older version whose table had other keys
                    logger.warning(
                        "%s: %d saved items of an older layout not restored", spec.name, len(items) - len(kept)
                    )
                for item in kept:
                    self._dynamodb.put_item(TableName=spec.name, Item=item)
        restored = 0
        for bucket in self._buckets:
            manifest = self._manifest(bucket)
            for key, entry in manifest.items():
                body = (self._objects_dir / entry["file"]).read_bytes()
                self._s3.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    ContentType=entry["content_type"],
                    Metadata=entry["metadata"],
                )
            restored += len(manifest)
        if restored:
            logger.info("restored %d objects and the tables from %s", restored, self._dir)

    def _scan(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self._dynamodb.get_paginator("scan").paginate(TableName=table):
            items.extend(page.get("Items", []))
        return items

    def _save_objects(self, bucket: str) -> None:
        """Incremental: only objects whose ETag changed are written again."""
        old = self._manifest(bucket)
        new: dict[str, Any] = {}
        self._objects_dir.mkdir(parents=True, exist_ok=True)
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key, etag = obj["Key"], obj["ETag"]
                if key in old and old[key]["etag"] == etag:
                    new[key] = old[key]
                    continue
                response = self._s3.get_object(Bucket=bucket, Key=key)
                file_name = self._file_name(bucket, key)
                (self._objects_dir / file_name).write_bytes(response["Body"].read())
                new[key] = {
                    "file": file_name,
                    "etag": etag,
                    "content_type": response.get("ContentType", ""),
                    "metadata": response.get("Metadata", {}),
                }
        for key in old.keys() - new.keys():
            (self._objects_dir / old[key]["file"]).unlink(missing_ok=True)
        _write_json(self._manifest_path(bucket), new)

    def _manifest(self, bucket: str) -> dict[str, Any]:
        path = self._manifest_path(bucket)
        return json.loads(path.read_text()) if path.exists() else {}

    def _manifest_path(self, bucket: str) -> Path:
        # The documents bucket keeps the name it had when it was the only one.
        documents = bucket == self._resources.documents_bucket.name
        return self._dir / ("s3-manifest.json" if documents else f"s3-manifest-{bucket}.json")

    def _file_name(self, bucket: str, key: str) -> str:
        documents = bucket == self._resources.documents_bucket.name
        return hashlib.sha256((key if documents else f"{bucket}/{key}").encode()).hexdigest()


def _write_json(path: Path, data: Any) -> None:
    # Write then rename, so a crash mid-write never leaves a truncated snapshot.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
