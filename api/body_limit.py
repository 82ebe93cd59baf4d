"""A request body limit enforced before anything reads the body (pure ASGI).

FastAPI reads and parses a JSON body before it solves dependencies, authentication
included, so without this an anonymous client could make the API buffer any
amount of memory. A declared Content-Length over the limit is refused at once,
unread; a chunked body is counted as it streams and refused at the first byte
over. Either way the answer is a 413 with a JSON message, and the server never
holds more than the limit plus one receive chunk.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def refusal(limit: int) -> tuple[Message, Message]:
    """The 413 answer as the two ASGI messages that send it."""
    detail = f"the request body is over the limit of {limit} bytes"
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number; -1 when it is not one."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and (declared < 0 or declared > self.max_bytes):
            for message in refusal(self.max_bytes):
                await send(message)
            return
        received = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            """Past the limit, answer 413 ourselves and tell the app the client left:
            the app stops reading, and whatever it answers is dropped."""
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        for answer in refusal(self.max_bytes):
                            await send(answer)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
