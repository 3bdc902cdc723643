from __future__ import annotations

from strata.inference import SSEDecoder, encode_sse, iter_sse_json


def test_decoder_reassembles_events_split_anywhere() -> None:
    stream = (encode_sse({"n": 1}) + encode_sse({"n": "é"}) + encode_sse("[DONE]") + encode_sse({"n": 3})).encode()
    for size in (1, 2, 7, len(stream)):
        parts = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert list(iter_sse_json(parts)) == [{"n": 1}, {"n": "é"}]


def test_decoder_ignores_comments_and_crlf() -> None:
    decoder = SSEDecoder()
    assert list(decoder.feed(b': keep-alive\r\n\r\ndata: {"a": 1}\r\n\r\n')) == ['{"a": 1}']
