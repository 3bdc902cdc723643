"""Runs ``strata dev`` in a subprocess, as a user does: for the end-to-end tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from strata_local.env_file import read_env_file

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], T | None], *, timeout_s: float, interval_s: float = 0.2, what: str = "") -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what or check}")


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    state_dir: Path
    documents_dir: Path
    env: dict[str, str]
    log_path: Path
    ready_s: float

    @property
    def api_url(self) -> str:
        return self.env["STRATA_API_URL"]

    @property
    def base_url(self) -> str:
        return self.api_url.removesuffix("/v1")

    def boto3_client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.env['STRATA_API_KEY']}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=120)

    def document(self, document_id: str, key: str | None = None) -> dict[str, Any] | None:
        with self.http(key) as client:
            response = client.get(f"/v1/documents/{document_id}")
        return response.json() if response.status_code == 200 else None

    def wait_for_status(
        self, document_id: str, status: str, timeout_s: float = 120, key: str | None = None
    ) -> dict[str, Any]:
        """Waits until the document reads ``status``, as its tenant sees it (``key``: the dev key's)."""

        def check() -> dict[str, Any] | None:
            doc = self.document(document_id, key)
            if doc and doc["status"] == "failed" and status != "failed":
                raise AssertionError(f"document failed: {doc['reason']}")
            return doc if doc and doc["status"] == status else None

        return wait_until(check, timeout_s=timeout_s, interval_s=0.25, what=f"{document_id} {status}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``strata …`` against this stack's tables, as a user runs it beside ``strata dev``: it
        reads the stack's ``local.env``, and nothing of this process's ``STRATA_*`` setup."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("STRATA_", "AWS_ENDPOINT"))}
        command = [sys.executable, "-m", "strata_local.cli", *args, "--state-dir", str(self.state_dir)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment, check=False)

    def create_key(self, tenant: str, *options: str) -> str:
        """A new key of ``tenant`` (``options``: ``--scopes``, ``--rpm``, …), through the CLI."""
        created = self.cli("keys", "create", "--tenant", tenant, *options)
        if created.returncode != 0:
            raise RuntimeError(f"strata keys create failed ({created.returncode}): {created.stderr}")
        return created.stdout.strip().splitlines()[-1]


def start_stack(
    workdir: Path,
    *,
    ingest_retry_s: int = 1,
    timeout_s: float = 300,
    models_file: Path | None = None,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> RunningStack:
    """``strata dev`` in a subprocess, on free ports, with its state under ``workdir``
    (``models_file``: ``--models FILE``; ``env``: extra environment, e.g. ``STRATA_*`` settings;
    ``args``: more of its options, e.g. ``("--scale-to-zero", "600")``)."""
    state_dir, documents_dir = workdir / ".strata", workdir / "documents"
    log_path = workdir / "stack.log"
    env_file = state_dir / "local.env"
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    command = [
        sys.executable,
        "-m",
        "strata_local.cli",
        "dev",
        "--port",
        str(free_port()),
        "--model-port",
        str(free_port()),
        "--aws-port",
        str(free_port()),
        "--state-dir",
        str(state_dir),
        "--documents",
        str(documents_dir),
        "--ingest-retry",
        str(ingest_retry_s),
        *(["--models", str(models_file)] if models_file else []),
        *args,
    ]
    began = time.monotonic()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"strata dev exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        return b"ready in" in log_path.read_bytes()[log_offset:]

    try:
        wait_until(ready, timeout_s=timeout_s, interval_s=0.1, what="the local stack")
    except BaseException:
        process.kill()
        raise
    return RunningStack(
        process=process,
        state_dir=state_dir,
        documents_dir=documents_dir,
        env=read_env_file(env_file),
        log_path=log_path,
        ready_s=time.monotonic() - began,
    )
