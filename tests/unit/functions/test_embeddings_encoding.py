"""/v1/embeddings' base64 encoding is OpenAI's: little-endian float32, as the openai SDK decodes it."""

from __future__ import annotations

import base64

import numpy as np

from functions.api.routes.embeddings import _encode


def test_base64_vectors_decode_as_the_openai_sdk_decodes_them() -> None:
    vector = [0.25, -1.5, 3.0e-7, 123.456]

    encoded = _encode(vector, "base64")

    assert isinstance(encoded, str)
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")  # what the SDK does
    assert decoded.tolist() == np.asarray(vector, dtype=np.float32).tolist()
    assert _encode(vector, "float") == vector
