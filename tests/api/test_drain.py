"""DrainUnreadBodyMiddleware on its own: a reply sent before the body was read waits until
the body is read (to a bound), and says ``Connection: close`` when it was not."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from service.api.drain import DrainUnreadBodyMiddleware

START: Message = {"type": "http.response.start", "status": 401, "headers": []}
END: Message = {"type": "http.response.body", "body": b"refused"}


def scope_with(*headers: tuple[bytes, bytes]) -> Scope:
    return {"type": "http", "path": "/v1/feedback", "headers": list(headers)}


class Client:
    """Hands out ``chunks`` body messages of ``size`` bytes, recording what was read and
    in which order messages went out."""

    def __init__(self, chunks: int, size: int = 1000) -> None:
        self.left = chunks
        self.size = size
        self.events: list[str] = []
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.left -= 1
        self.events.append("read")
        return {"type": "http.request", "body": b"0" * self.size, "more_body": self.left > 0}

    async def send(self, message: Message) -> None:
        self.events.append(message["type"])
        self.sent.append(message)


async def refuse_unread(scope: Scope, receive: Receive, send: Send) -> None:
    await send(START)
    await send(END)


async def run(client: Client, scope: Scope, max_bytes: int = 10**6) -> list[str]:
    app = DrainUnreadBodyMiddleware(refuse_unread, max_bytes=max_bytes, timeout_s=30)
    await app(scope, client.receive, client.send)
    return client.events


async def test_the_body_is_read_before_the_refusal_completes() -> None:
    client = Client(chunks=5)
    events = await run(client, scope_with((b"content-length", b"5000")))
    assert events == ["read"] * 5 + ["http.response.start", "http.response.body"]
    start = client.sent[0]
    assert (b"connection", b"close") not in start["headers"]


async def test_past_the_bound_the_reply_closes_the_connection() -> None:
    client = Client(chunks=1000)
    events = await run(client, scope_with((b"transfer-encoding", b"chunked")), max_bytes=3000)
    assert events.count("read") == 4  # 0, 1000, 2000, 3000 bytes drained, then no more
    start = client.sent[0]
    assert (b"connection", b"close") in start["headers"]


async def test_a_client_waiting_to_continue_is_not_asked_for_its_body() -> None:
    client = Client(chunks=5)
    scope = scope_with((b"content-length", b"5000"), (b"expect", b"100-continue"))
    events = await run(client, scope)
    assert events == ["http.response.start", "http.response.body"]
    assert (b"connection", b"close") in client.sent[0]["headers"]


async def test_a_request_without_a_body_passes_straight_through() -> None:
    client = Client(chunks=5)
    events = await run(client, scope_with())
    assert events == ["http.response.start", "http.response.body"]
