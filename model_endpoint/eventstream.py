"""AWS event-stream encoder (``application/vnd.amazon.eventstream``).

The SageMaker runtime answers ``InvokeEndpointWithResponseStream`` with this binary framing;
botocore decodes it (``botocore.eventstream``) into ``{"PayloadPart": {"Bytes": ...}}`` events.
Each message is::

    prelude:  total length (uint32) | headers length (uint32) | CRC32 of those 8 bytes (uint32)
    headers:  name length (uint8) | name | value type (uint8, 7 = string) | value length (uint16) | value
    payload
    trailer:  CRC32 of everything above (uint32)

All integers are big-endian; CRC32 is the IEEE polynomial (``zlib.crc32``).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator, Mapping

__all__ = (
    "CONTENT_TYPE",
    "MAX_PAYLOAD_LENGTH",
    "encode_message",
    "model_stream_error",
    "payload_parts",
)

CONTENT_TYPE = "application/vnd.amazon.eventstream"

_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
_STRING_HEADER_TYPE = 7
# botocore rejects payloads over 24 MiB and headers over 128 KiB; stay well under both
# so a large buffered body never becomes an undecodable frame.
MAX_PAYLOAD_LENGTH = 16 * 1024 * 1024
_MAX_HEADERS_LENGTH = 128 * 1024


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        raw_value = value.encode("utf-8")
        if len(raw_name) > 255 or len(raw_value) > 0xFFFF:
            raise ValueError(f"event-stream header {name!r} is too long")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING_HEADER_TYPE, len(raw_value)) + raw_value
    if len(out) > _MAX_HEADERS_LENGTH:
        raise ValueError(f"event-stream headers of {len(out)} bytes exceed {_MAX_HEADERS_LENGTH}")
    return bytes(out)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Frame one event-stream message (string headers only, which is all SageMaker uses)."""
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise ValueError(f"event-stream payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_LENGTH}")
    raw_headers = _encode_headers(headers)
    total_length = _PRELUDE.size + _CRC.size + len(raw_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total_length, len(raw_headers))
    head = prelude + _CRC.pack(zlib.crc32(prelude)) + raw_headers + payload
    return head + _CRC.pack(zlib.crc32(head))


_PAYLOAD_PART_HEADERS = {
    ":event-type": "PayloadPart",
    ":message-type": "event",
    ":content-type": "application/octet-stream",
}


def payload_parts(chunk: bytes) -> Iterator[bytes]:
    """Wrap a chunk of the container's output as ``PayloadPart`` events (split if oversized)."""
    for start in range(0, len(chunk), MAX_PAYLOAD_LENGTH):
        yield encode_message(_PAYLOAD_PART_HEADERS, chunk[start : start + MAX_PAYLOAD_LENGTH])


def model_stream_error(message: str, error_code: str = "StreamBroken") -> bytes:
    """An exception message that botocore raises as ``EventStreamError`` (code ``ModelStreamError``)."""
    headers = {
        ":exception-type": "ModelStreamError",
        ":message-type": "exception",
        ":content-type": "application/json",
    }
    body = json.dumps({"Message": message, "ErrorCode": error_code}).encode("utf-8")
    return encode_message(headers, body)
