from __future__ import annotations

import os

# Tests never talk to AWS: any client built without an endpoint gets these and fails fast.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


import pytest  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
