"""A tiny HTTP/1.1 server on 127.0.0.1 that records every raw request it receives and answers
each with a fixed status, for checking what the load generators really send."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Recorder:
    port: int = 0
    status: int = 200
    requests: list[bytes] = field(default_factory=list)
    delay_s: float = 0.0


async def _handle(
    recorder: Recorder, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            recorder.requests.append(head + body)
            if recorder.delay_s:
                await asyncio.sleep(recorder.delay_s)
            reply = b'{"ok":true}'
            writer.write(
                b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % (recorder.status, len(reply))
                + reply
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@contextmanager
def recording_server(status: int = 200, delay_s: float = 0.0) -> Iterator[Recorder]:
    """Serve in a background thread for the duration of the ``with`` block."""
    recorder = Recorder(status=status, delay_s=delay_s)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server = await asyncio.start_server(lambda r, w: _handle(recorder, r, w), "127.0.0.1", 0)
        recorder.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield recorder
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
