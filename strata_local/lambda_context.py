from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from strata_local.aws import LOCAL_ACCOUNT, LOCAL_REGION


@dataclass
class LocalLambdaContext:
    """What Lambda passes as ``context``, enough for Powertools' Logger and BatchProcessor."""

    function_name: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000
