"""``strata dev``: the whole stack on one machine, with the same code that runs in AWS."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.responses import JSONResponse

from functions.openapi import public_openapi
from model_endpoint.config import DEFAULT_WAKE_S
from strata import aws
from strata.auth import build_key_store, generate_secret, is_key_shaped
from strata.config import RESOURCES, ROUTES, Settings
from strata.config.frontend import connect_origins, content_security_policy, runtime_config, sign_in_from
from strata.documents import DocumentRegistry, source_key_for
from strata.inference import ModelRegistry, ModelRegistryError, registry_from_settings
from strata.inference.factory import build_breakers
from strata.interactions import close_interaction_writers
from strata_local import aws as local_aws
from strata_local.env_file import read_env_file, write_env_file
from strata_local.gateway import FrontendSite, LocalGateway, Route, routes_from_table
from strata_local.poller import SqsPoller
from strata_local.processes import Supervisor, ensure_port_free, responds, start_model_server, wait_for_http
from strata_local.reconcile import reconcile
from strata_local.state import LocalStateStore
from strata_local.watcher import DocumentsFolderMirror

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_MODEL_PARAMETERS = {"repetition_penalty": 1.2}
LOCAL_MODEL_MAX_TOKENS = 128
# One poller feeds the ingest function here, not many concurrent Lambdas: a short budget per
# invocation keeps another tenant's small file from waiting behind a long document's parts.
LOCAL_INGEST_TIME_BUDGET_S = 10
# The security headers CloudFront adds to the page (infra_cdk.constructs.frontend), but HSTS: the
# local page is plain http.
PAGE_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def _private(state_dir: Path) -> None:
    """The state folder holds the vector store, copies of every table and object, the key pepper
    and the logs: its owner's only (0700), and so is what is already in it (0600)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    for path in state_dir.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


@dataclass(frozen=True, slots=True)
class LocalStackConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    model_port: int = 8080
    aws_port: int = 4566
    state_dir: Path = Path(".strata")
    documents_dir: Path = Path("documents")
    frontend_dir: Path = REPO_ROOT / "frontend"
    dev_tenant: str = "dev"
    # How long a failed ingestion waits before SQS hands it back (Lambda uses the queue's own
    # timeout; locally a short one keeps the retry → DLQ cycle quick).
    ingest_retry_s: int = 5
    models_file: Path | None = None  # the model registry; None: the local model server as "default"
    state_save_interval_s: float = 10
    model_ready_timeout_s: float = 300
    # The chat model scales to zero after this many idle seconds and takes wake_s to wake (None: always on).
    scale_to_zero_after_s: float | None = None
    wake_s: float | None = None

    @property
    def env_file(self) -> Path:
        return self.state_dir / "local.env"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def aws_url(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    @property
    def model_url(self) -> str:
        return f"http://{self.host}:{self.model_port}"


@dataclass
class LocalStack:
    config: LocalStackConfig
    started_in_s: float = 0.0
    _closers: list[Any] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Start, print where everything is, and serve until SIGINT/SIGTERM."""
        # While starting, a signal interrupts the start (models can take a while to load)...
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            self.start()
            # ...once serving, it ends the loop below, which saves the state one last time.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self._stop.set())
            print(self.banner(), flush=True)
            while not self._stop.wait(self.config.state_save_interval_s):
                self._save_state()
        except KeyboardInterrupt:
            logger.info("interrupted")
        finally:
            self.stop()
            print(f"Strata local stack stopped; state kept in {self.config.state_dir}/", flush=True)

    def start(self) -> None:
        """The flow: ports → environment → model server → local AWS → functions → gateway."""
        began = time.monotonic()
        config = self.config
        _private(config.state_dir)
        for port, what in (
            (config.port, "gateway"),
            (config.model_port, "model server"),
            (config.aws_port, "local AWS"),
        ):
            ensure_port_free(config.host, port, what)
        self.env = self._environment()
        os.environ.update(self.env)
        settings = Settings()
        try:  # a bad registry is an error now, naming the field, not at the first request
            registry = registry_from_settings(settings)
        except ModelRegistryError as error:
            raise RuntimeError(str(error)) from None
        logger.info("models: %s", ", ".join(f"{a} ({t.provider})" for a, t in registry.models.items()))

        model_server = self._start_model_server(settings, registry)
        aws_clients, queues = self._start_local_aws(settings)
        logger.info("waiting for the models to load")
        wait_for_http(f"{config.model_url}/ping", timeout_s=config.model_ready_timeout_s, process=model_server)
        self.model_server.watch()

        # The functions read their settings from the environment, as in Lambda: import them now.
        from functions.api.app import app as api_app
        from functions.authorizer.app import handler as authorizer
        from functions.chat.app import app as chat_app
        from functions.ingest.app import handler as ingest_handler

        self._start_ingestion(settings, aws_clients, queues, ingest_handler)
        gateway = LocalGateway(
            routes=[
                *routes_from_table(ROUTES, {"chat": chat_app, "api": api_app}),
                Route("/openapi.json", JSONResponse(public_openapi()), authorized=False, methods=frozenset({"GET"})),
            ],
            authorizer=authorizer,
            frontend=self._frontend_site(settings),
            region=settings.aws_region,
        )
        self._serve(gateway)
        write_env_file(config.env_file, self.env)
        self.started_in_s = time.monotonic() - began

    def _start_model_server(self, settings: Settings, registry: ModelRegistry) -> subprocess.Popen[bytes]:
        """The model server as a supervised child: if it dies, it is logged and started again, and
        meanwhile the breakers of the aliases it serves (the SageMaker ones) are open, so requests
        go to their fallbacks at once and /healthz says why."""
        log_path = self.config.logs_dir / "model_endpoint.log"
        logger.info("starting the model server (logs in %s)", log_path)
        served = [alias for alias, target in registry.models.items() if target.provider == "sagemaker"]

        def down(code: int) -> None:
            breakers = build_breakers(settings)
            for alias in served:
                breakers.trip(alias, f"the local model server exited with code {code}; restarting it")

        def up() -> None:
            breakers = build_breakers(settings)
            for alias in served:
                breakers.reset(alias)

        supervisor = Supervisor(
            "model server",
            lambda: start_model_server(
                host=self.config.host,
                port=self.config.model_port,
                endpoints=(settings.chat_endpoint, settings.embedding_endpoint),
                log_path=log_path,
                scale_to_zero_after_s=self.config.scale_to_zero_after_s,
                wake_s=self.config.wake_s,
            ),
            ready=lambda: responds(f"{self.config.model_url}/ping"),
            on_exit=down,
            on_ready=up,
        )
        self._closers.append(supervisor.stop)
        self.model_server = supervisor
        return supervisor.process

    def _start_local_aws(self, settings: Settings) -> tuple[dict[str, Any], local_aws.LocalQueues]:
        """moto with the resources, the saved state restored, the queue's lost events re-queued."""
        logger.info("starting local AWS (moto) on %s", self.config.aws_url)
        self._closers.append(local_aws.serialize_dynamodb())
        moto = local_aws.start_moto(self.config.host, self.config.aws_port)
        self._closers.append(moto.stop)
        clients = {service: aws.client(service, settings) for service in ("s3", "sqs", "dynamodb")}
        local_aws.create_buckets(clients["s3"])
        local_aws.create_tables(clients["dynamodb"])
        queues = local_aws.create_queues(clients["sqs"])
        self._state = LocalStateStore(self.config.state_dir / "state", s3=clients["s3"], dynamodb=clients["dynamodb"])
        self._state.restore()
        self._closers.append(self._state.save)
        local_aws.enable_notifications(clients["s3"], queues.queue_arn)
        reconcile(
            s3=clients["s3"],
            sqs=clients["sqs"],
            queue_url=queues.queue_url,
            bucket=settings.documents_bucket,
            registry=DocumentRegistry(aws.resource("dynamodb", settings).Table(settings.documents_table)),
            prefix=settings.tenant_prefix,
            region=settings.aws_region,
        )
        build_key_store(settings).register(
            self.env["STRATA_API_KEY"], self.config.dev_tenant, name="local development key"
        )
        return clients, queues

    def _start_ingestion(
        self, settings: Settings, clients: dict[str, Any], queues: local_aws.LocalQueues, handler: Any
    ) -> None:
        """The event source mapping (queue → ingest function) and the watched folder."""
        poller = SqsPoller(
            sqs=clients["sqs"],
            queue_url=queues.queue_url,
            queue_arn=queues.queue_arn,
            handler=handler,
            function_name="strata-ingest",
            visibility_timeout_s=self.config.ingest_retry_s,
            region=settings.aws_region,
        )
        poller.start()
        self._closers.append(poller.stop)
        mirror = DocumentsFolderMirror(
            folder=self.config.documents_dir,
            s3=clients["s3"],
            bucket=settings.documents_bucket,
            tenant=self.config.dev_tenant,
            tenant_prefix=settings.tenant_prefix,
        )
        mirror.start()
        self._closers.append(mirror.stop)

    def _frontend_site(self, settings: Settings) -> FrontendSite | None:
        """The page as CloudFront serves it: the same files, a config.json, the same content
        security policy (the API is the page's own origin here; uploads go to the local S3)."""
        config = self.config
        if not config.frontend_dir.is_dir():
            return None
        sign_in = sign_in_from(settings)
        policy = content_security_policy(
            connect_origins(config.api_url.removesuffix("/v1"), upload_origins=[config.aws_url], sign_in=sign_in)
        )
        return FrontendSite(
            config.frontend_dir,
            runtime_config("/v1", sign_in),
            {**PAGE_HEADERS, "Content-Security-Policy": policy},
        )

    def _serve(self, gateway: LocalGateway) -> None:
        config = self.config
        server = uvicorn.Server(
            uvicorn.Config(
                gateway,
                host=config.host,
                port=config.port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=5,
            )
        )
        thread = threading.Thread(target=server.run, name="gateway", daemon=True)
        thread.start()
        # After the gateway stops, before the state is saved: the interaction log's last records.
        self._closers.append(close_interaction_writers)
        self._closers.append(lambda: (setattr(server, "should_exit", True), thread.join(10)))
        wait_for_http(f"http://{config.host}:{config.port}/healthz", timeout_s=30)

    def _save_state(self) -> None:
        try:
            self._state.save()
        except Exception:
            logger.exception("saving the local state failed; will try again")

    def stop(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:
                logger.exception("stopping the local stack")

    def _environment(self) -> dict[str, str]:
        """Everything a client needs; the key and pepper survive restarts in the env file."""
        config = self.config
        previous = read_env_file(config.env_file)
        api_key = previous.get("STRATA_API_KEY")
        if not api_key or not is_key_shaped(api_key):  # none yet, or one of an older format
            api_key = generate_secret()
        pepper_file = self._pepper_file(previous.get("STRATA_KEY_PEPPER"))
        return {
            "STRATA_API_URL": config.api_url,
            "STRATA_API_KEY": api_key,
            "STRATA_TENANT": config.dev_tenant,
            "STRATA_DOCUMENTS_BUCKET": RESOURCES.documents_bucket.name,
            "OPENAI_BASE_URL": config.api_url,
            "OPENAI_API_KEY": api_key,
            "AWS_ENDPOINT_URL": config.aws_url,
            "AWS_ACCESS_KEY_ID": local_aws.LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": local_aws.LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "AWS_DEFAULT_REGION": local_aws.LOCAL_REGION,
            "STRATA_AWS_REGION": local_aws.LOCAL_REGION,
            "STRATA_AWS_ENDPOINT_URL": config.aws_url,
            "STRATA_SAGEMAKER_RUNTIME_URL": config.model_url,
            "STRATA_KEY_PEPPER_FILE": str(pepper_file.resolve()),
            # Metrics go to CloudWatch as EMF in AWS; locally the request log line says it all.
            "POWERTOOLS_METRICS_DISABLED": "true",
            "STRATA_VECTOR_STORE": "local",
            "STRATA_VECTOR_STORE_PATH": str((config.state_dir / "vectors.db").resolve()),
            # Decoding that suits the local 135M model (bench/RESULTS.md, "Answer quality"): a
            # repetition penalty keeps it from looping to the token cap, and its good answers are
            # one or two sentences. A registry file (--models) sets its own per alias.
            "STRATA_CHAT_PARAMETERS": json.dumps(LOCAL_MODEL_PARAMETERS),
            "STRATA_MAX_OUTPUT_TOKENS": str(LOCAL_MODEL_MAX_TOKENS),
            "STRATA_INGEST_TIME_BUDGET_S": str(LOCAL_INGEST_TIME_BUDGET_S),
            **({"STRATA_MODELS_FILE": str(config.models_file.resolve())} if config.models_file else {}),
            # With --scale-to-zero, a waking model's 503 says to come back when the local wake ends.
            **(
                {"STRATA_MODEL_WAKE_RETRY_AFTER_S": str(config.wake_s or DEFAULT_WAKE_S)}
                if config.scale_to_zero_after_s
                else {}
            ),
        }

    def _pepper_file(self, previous: str | None) -> Path:
        """The pepper keying the API-key hashes, kept in the state folder (never in the env file);
        an older state's pepper moves there, so its keys stay valid."""
        path = self.config.state_dir / "pepper"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(previous or secrets.token_urlsafe(32))
        return path

    def banner(self) -> str:
        config, env = self.config, self.env
        return "\n".join(
            [
                f"Strata local stack ready in {self.started_in_s:.1f} s",
                f"  Chat UI        http://{config.host}:{config.port}/#key={env['STRATA_API_KEY']}",
                f"  API (OpenAI)   {config.api_url}",
                f"  API key        {env['STRATA_API_KEY']}  (tenant {config.dev_tenant})",
                f"  Local AWS      {config.aws_url}  (moto: S3 bucket {env['STRATA_DOCUMENTS_BUCKET']}, SQS, DynamoDB)",
                f"  Model server   {config.model_url}  (SageMaker container contract)",
                f"  Drop files in  {config.documents_dir}/  → s3://{env['STRATA_DOCUMENTS_BUCKET']}/"
                f"{source_key_for(config.dev_tenant, '')}",
                f"  Environment    {config.env_file}  (set -a; . {config.env_file}; set +a)",
                f"  Logs           {config.logs_dir}/",
                "Press Ctrl+C to stop.",
            ]
        )
