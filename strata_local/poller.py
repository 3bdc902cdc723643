"""Feeds SQS batches to a Lambda handler the way Lambda's event source mapping does.

Receive a batch (the messages turn invisible for the visibility timeout) → invoke the handler
with an SQS event → delete the messages it did not report in ``batchItemFailures``. Reported or
unhandled failures stay in the queue, come back after the visibility timeout, and the queue's
redrive policy moves them to the DLQ after ``maxReceiveCount`` receives. The batch size is the
event source mapping's own (``RESOURCES.ingest_source``), so a batch is the same here and in AWS.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from strata.config import RESOURCES
from strata_local.lambda_context import LocalLambdaContext

logger = logging.getLogger(__name__)

LambdaHandler = Callable[[dict[str, Any], Any], Any]


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class SqsPoller:
    def __init__(
        self,
        *,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: LambdaHandler,
        function_name: str,
        batch_size: int = RESOURCES.ingest_source.batch_size,
        visibility_timeout_s: int | None = None,
        region: str = "us-east-1",
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self._function_name = function_name
        self._batch_size = batch_size
        self._visibility_timeout_s = visibility_timeout_s
        self._region = region
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poller-{function_name}", daemon=True)
        self.processed = 0
        self.failed = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def poll_once(self, wait_s: int = 1) -> int:
        """One receive → invoke → delete cycle; returns the number of messages received."""
        kwargs: dict[str, Any] = {
            "QueueUrl": self._queue_url,
            "MaxNumberOfMessages": self._batch_size,
            "WaitTimeSeconds": wait_s,
            "AttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if self._visibility_timeout_s is not None:
            kwargs["VisibilityTimeout"] = self._visibility_timeout_s
        messages = self._sqs.receive_message(**kwargs).get("Messages", [])
        if not messages:
            return 0
        failed_ids = self._invoke(messages)
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        self.processed += len(done)
        self.failed += len(failed_ids)
        return len(messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        event = sqs_event(messages, queue_arn=self._queue_arn, region=self._region)
        try:
            response = self._handler(event, LocalLambdaContext(self._function_name)) or {}
        except BatchProcessingError:
            # Every record failed (Powertools raises then, as Lambda expects); the handler logged why.
            logger.warning("%s: all %d messages failed and will be retried", self._function_name, len(messages))
            return {m["MessageId"] for m in messages}
        except Exception:
            logger.exception("%s failed; the whole batch will be retried", self._function_name)
            return {m["MessageId"] for m in messages}
        return {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("polling %s failed", self._queue_url)
                self._stop.wait(1)
