"""Request limits decided before the body is parsed: body size (413) and header size (431).

A declared ``Content-Length`` over the limit is refused without reading a byte of the body; a
body without one (chunked) is counted as it arrives and refused as soon as it passes the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strata.config.routes import error_body


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_header_bytes: int) -> None:
        self._app = app
        self._max_body = max_body_bytes
        self._max_headers = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = scope["headers"]
        if sum(len(name) + len(value) for name, value in headers) > self._max_headers:
            message = f"Request headers too large: at most {self._max_headers} bytes."
            await _refuse(send, 431, message, "request_header_fields_too_large")
            return
        declared = next((value for name, value in headers if name == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_body):
            await _refuse(send, 413, self._too_large_message(), "request_too_large")
            return
        await self._counted(scope, receive, send)

    def _too_large_message(self) -> str:
        return f"Request body too large: at most {self._max_body} bytes."

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app reads the body through a counter; past the limit the client gets the 413, the
        app sees the client leave, and whatever the app still sends is dropped."""
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_body:
                    refused = True
                    await _refuse(send, 413, self._too_large_message(), "request_too_large")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self._app(scope, counting_receive, guarded_send)


async def _refuse(send: Send, status: int, message: str, code: str) -> None:
    import json

    body = json.dumps(error_body(message, type_="invalid_request_error", code=code)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
