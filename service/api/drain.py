"""A refusal sent before the request body was read reaches the client: the unread body is
read and discarded (up to a bound) before the reply completes.

Why: a server that closes a connection while request bytes wait unread in its socket makes
the kernel answer with a reset, and a client that sends its whole body before reading
(Python's urllib and http.client, which also ask for ``Connection: close``) then sees
``Connection reset by peer`` instead of the 401 or 413 problem body. Clients that read
early (curl, httpx) get the reply either way.

The bound: at most ``max_bytes`` and ``timeout_s`` are spent on one refused body, so a huge
or trickled body cannot hold a connection for long; past either, the reply goes out with
``Connection: close`` and the server closes (a client still sending may then see a reset).
A client that sent ``Expect: 100-continue`` and was never told to continue is not asked
for its body: it sends none. Pure ASGI; nothing is buffered but the refusal itself.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.guard import has_body, header


class DrainUnreadBodyMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        body_done = False
        received_any = False
        held: list[Message] = []  # the reply's start and end while the body is unread

        async def watching_receive() -> Message:
            nonlocal body_done, received_any
            received_any = True
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def holding_send(message: Message) -> None:
            if body_done:  # the common case: the app read the body before replying
                if held:
                    await _flush(held, send)
                await send(message)
            elif message["type"] == "http.response.start":
                held.append(message)
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                held.append(message)
            else:  # a streamed reply: nothing to hold back
                await _flush(held, send)
                await send(message)

        try:
            await self.app(scope, watching_receive, holding_send)
        except BaseException:
            await _flush(held, send)
            raise
        if not held:
            return
        if not received_any and _expects_continue(scope):
            complete = False  # the client waits for a 100 Continue it will not get
        else:
            complete = await self._drain(receive)
        if not complete and held[0]["type"] == "http.response.start":
            start = held[0]
            held[0] = {**start, "headers": [*start["headers"], (b"connection", b"close")]}
        await _flush(held, send)

    async def _drain(self, receive: Receive) -> bool:
        """True when the body was read to its end (or the client left) within the bound."""
        drained = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while drained <= self.max_bytes:
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        return True
                    drained += len(message.get("body", b""))
        except TimeoutError:
            pass
        return False


async def _flush(held: list[Message], send: Send) -> None:
    while held:
        await send(held.pop(0))


def _expects_continue(scope: Scope) -> bool:
    return (header(scope, b"expect") or b"").strip().lower() == b"100-continue"
