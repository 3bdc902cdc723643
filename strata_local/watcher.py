"""Mirrors a local ``documents/`` folder into the bucket, so dropping a file there is an S3 drop.

Files become ``tenants/{tenant}/{relative path}``. Objects the mirror wrote carry a metadata
mark, so removing a file removes only what the mirror put there, never a user's own uploads.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import threading
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from strata.documents import TENANT_PREFIX, source_key_for

logger = logging.getLogger(__name__)

MIRROR_METADATA = {"strata-source": "documents-folder"}
_IGNORED_SUFFIXES = (".swp", ".tmp", ".part", ".crdownload", "~")
SETTLE_SECONDS = 0.5  # a file still being written is uploaded once it stops changing


def _ignored(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(_IGNORED_SUFFIXES)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


class DocumentsFolderMirror(FileSystemEventHandler):
    def __init__(self, *, folder: Path, s3: Any, bucket: str, tenant: str, tenant_prefix: str = TENANT_PREFIX) -> None:
        self._folder = folder.absolute()
        self._s3 = s3
        self._bucket = bucket
        self._tenant = tenant
        self._tenant_prefix = tenant_prefix
        self._timers: dict[Path, threading.Timer] = {}
        self._lock = threading.Lock()
        self._observer = Observer()

    def key_for(self, path: Path) -> str:
        # absolute(), not resolve(): a symlink inside the folder is named by where it sits.
        return source_key_for(self._tenant, path.absolute().relative_to(self._folder).as_posix(), self._tenant_prefix)

    def start(self) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        self.sync()
        self._observer.schedule(self, str(self._folder), recursive=True)
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(5)
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()

    def sync(self) -> None:
        """Bring the bucket in line with the folder: upload new or changed files, remove mirrored
        objects whose file is gone."""
        mirrored = self._mirrored_objects()
        present: set[str] = set()
        for path in sorted(p for p in self._folder.rglob("*") if p.is_file() and not _ignored(p)):
            key = self.key_for(path)
            present.add(key)
            try:
                if mirrored.get(key) != _md5(path):
                    self.upload(path)
            except OSError:
                logger.exception("could not mirror %s", path)
        for key in mirrored.keys() - present:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
            logger.info("removed %s (file gone from %s)", key, self._folder)

    def upload(self, path: Path) -> None:
        if not path.is_file() or _ignored(path):
            return
        key = self.key_for(path)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=path.read_bytes(),
            ContentType=content_type,
            Metadata=MIRROR_METADATA,
        )
        logger.info("uploaded %s → s3://%s/%s", path.name, self._bucket, key)

    def remove(self, path: Path) -> None:
        """Delete the object this file was mirrored to, unless someone else's upload replaced it."""
        key = self.key_for(path)
        try:
            metadata = self._s3.head_object(Bucket=self._bucket, Key=key).get("Metadata", {})
        except self._s3.exceptions.ClientError:
            return
        if metadata == MIRROR_METADATA:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
            logger.info("removed s3://%s/%s", self._bucket, key)

    def _mirrored_objects(self) -> dict[str, str]:
        prefix = source_key_for(self._tenant, "", self._tenant_prefix)
        objects: dict[str, str] = {}
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                head = self._s3.head_object(Bucket=self._bucket, Key=obj["Key"])
                if head.get("Metadata", {}) == MIRROR_METADATA:
                    objects[obj["Key"]] = obj["ETag"].strip('"')
        return objects

    # watchdog callbacks (on the observer thread)

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._settle(Path(event.src_path))

    def on_modified(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._settle(Path(event.src_path))

    def on_deleted(self, event: FileSystemEvent) -> None:
        if not event.is_directory and not _ignored(Path(event.src_path)):
            self._cancel(Path(event.src_path))
            self._guard(self.remove, Path(event.src_path))

    def on_moved(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        self.on_deleted(event)
        self._settle(Path(event.dest_path))

    def _settle(self, path: Path) -> None:
        if _ignored(path):
            return
        with self._lock:
            self._cancel_locked(path)
            timer = threading.Timer(SETTLE_SECONDS, self._guard, args=(self.upload, path))
            timer.daemon = True
            self._timers[path] = timer
            timer.start()

    def _cancel(self, path: Path) -> None:
        with self._lock:
            self._cancel_locked(path)

    def _cancel_locked(self, path: Path) -> None:
        timer = self._timers.pop(path, None)
        if timer:
            timer.cancel()

    @staticmethod
    def _guard(action: Any, path: Path) -> None:
        try:
            action(path)
        except Exception:
            logger.exception("mirroring %s failed", path)
