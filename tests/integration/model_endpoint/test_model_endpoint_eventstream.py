"""The AWS event-stream encoder, checked with botocore's own decoder (CRCs included)."""

from __future__ import annotations

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from model_endpoint import eventstream


def decode_all(data: bytes, piece: int | None = None) -> list:
    buffer = EventStreamBuffer()
    messages = []
    step = piece or len(data) or 1
    for start in range(0, len(data), step):
        buffer.add_data(data[start : start + step])
        messages.extend(buffer)
    return messages


def test_payload_part_decodes_with_botocore_headers_and_payload_intact():
    # GIVEN an SSE line as the container writes it
    chunk = 'data: {"choices":[{"delta":{"content":"héllo"}}]}\n\n'.encode()

    # WHEN it is framed
    (frame,) = list(eventstream.payload_parts(chunk))

    # THEN botocore's parser (which checks both CRCs) yields the same bytes and headers
    (message,) = decode_all(frame)
    assert message.payload == chunk
    assert message.headers == {
        ":event-type": "PayloadPart",
        ":message-type": "event",
        ":content-type": "application/octet-stream",
    }
    assert message.prelude.total_length == len(frame)


def test_messages_split_across_reads_decode_in_order():
    chunks = [f"data: {i}\n\n".encode() for i in range(5)]
    data = b"".join(frame for chunk in chunks for frame in eventstream.payload_parts(chunk))

    messages = decode_all(data, piece=7)  # arbitrary network read sizes

    assert [m.payload for m in messages] == chunks


@pytest.mark.parametrize(
    "offset", [7, 10, 20, -5, -1], ids=["headers-length", "prelude-crc", "header", "payload", "message-crc"]
)
def test_corrupted_frame_fails_botocore_checksum(offset: int):
    frame = bytearray(next(eventstream.payload_parts(b"data: [DONE]\n\n")))
    frame[offset] ^= 0x01

    with pytest.raises(ChecksumMismatch):
        decode_all(bytes(frame))


def test_oversized_chunk_is_split_into_several_payload_parts(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(eventstream, "MAX_PAYLOAD_LENGTH", 10)
    chunk = bytes(range(25))

    frames = list(eventstream.payload_parts(chunk))

    assert len(frames) == 3
    assert b"".join(m.payload for f in frames for m in decode_all(f)) == chunk


def test_model_stream_error_is_an_exception_message():
    (message,) = decode_all(eventstream.model_stream_error("boom", "ModelInvocationTimeExceeded"))

    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "ModelStreamError"
    assert b'"ErrorCode": "ModelInvocationTimeExceeded"' in message.payload
