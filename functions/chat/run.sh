#!/bin/sh
# Lambda Web Adapter entry point: uvicorn serves the FastAPI app; LWA streams its responses.
cd "$(dirname "$0")" || exit 1
exec python -m uvicorn app:app --host 127.0.0.1 --port "${PORT:-8000}" --no-access-log
