"""Raw HTTP/1.1 requests rendered once in Python and replayed by wrk (Lua) or the open-loop
generator, so both load generators send byte-identical requests.

Each send has a sequence number (1, 2, ... per generator thread). A request may carry
fixed-width tokens replaced on every send by 10 zero-padded digits, so ``Content-Length``
stays valid: ``@STREAM@@@`` by the sequence number modulo ``n_streams`` (to churn
per-stream state), ``@UNIQUE@@@`` by the sequence number (client reading and label ids),
and ``@BACKREF@@`` by the sequence number of the request ``backref`` sends earlier (a
label naming a reading scored by an earlier request). Until that many requests have been
sent, a request with a back-reference is replaced by the first request of the cycle.
``@RUNTAG@@@`` is replaced once, when the file is written, by a tag unique to the file, so
ids never repeat across runs against the same server.

Records file layout (read by ``replay.lua`` and :func:`read_records`)::

    loadtest-records 2 <n_streams> <n_records>\\n
    then per record:
    <head_len> <body_len> <head_has_tokens> <body_has_tokens> <backref>\\n<head><body>
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

STREAM_TOKEN = b"@STREAM@@@"
UNIQUE_TOKEN = b"@UNIQUE@@@"
BACKREF_TOKEN = b"@BACKREF@@"
RUNTAG_TOKEN = b"@RUNTAG@@@"
MAGIC = b"loadtest-records 2"


@dataclass(frozen=True)
class RequestTemplate:
    """One request of a scenario's cycle, and how many readings it carries."""

    method: str
    path: str
    body: bytes
    content_type: str
    readings: int
    kind: str = "score"
    headers: Mapping[str, str] = field(default_factory=dict)
    backref: int = 0
    """How many sends back the request named by ``@BACKREF@@`` was sent."""

    def head(self, host: str, port: int) -> bytes:
        lines = [
            f"{self.method} {self.path} HTTP/1.1",
            f"Host: {host}:{port}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True)
class Record:
    head: bytes
    body: bytes
    head_tokens: bool
    body_tokens: bool
    backref: int = 0


def _has_tokens(data: bytes) -> bool:
    return STREAM_TOKEN in data or UNIQUE_TOKEN in data or BACKREF_TOKEN in data


def render(
    templates: Sequence[RequestTemplate], host: str, port: int, *, run_tag: str
) -> list[Record]:
    """Raw requests for ``host:port``, with ``@RUNTAG@@@`` replaced by ``run_tag``."""
    tag = run_tag.encode("ascii")
    if len(tag) != len(RUNTAG_TOKEN) or not tag.isalnum():
        raise ValueError(f"run_tag must be {len(RUNTAG_TOKEN)} letters or digits")
    if templates and templates[0].backref:
        raise ValueError(
            "the first request of a cycle stands in for back-references: it can't have one"
        )
    records = []
    for template in templates:
        head = template.head(host, port).replace(RUNTAG_TOKEN, tag)
        body = template.body.replace(RUNTAG_TOKEN, tag)
        records.append(Record(head, body, _has_tokens(head), _has_tokens(body), template.backref))
    return records


def write_records(path: Path, records: Sequence[Record], *, n_streams: int) -> None:
    if not records:
        raise ValueError("a scenario needs at least one request")
    if n_streams < 1:
        raise ValueError(f"n_streams must be >= 1, got {n_streams}")
    with path.open("wb") as out:
        out.write(MAGIC + f" {n_streams} {len(records)}\n".encode())
        for record in records:
            flags = f"{len(record.head)} {len(record.body)} "
            flags += f"{int(record.head_tokens)} {int(record.body_tokens)} {record.backref}\n"
            out.write(flags.encode())
            out.write(record.head)
            out.write(record.body)


def read_records(path: Path) -> tuple[list[Record], int]:
    """The records and the number of streams they cycle through."""
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    parts = header.split(b" ")
    if b" ".join(parts[:2]) != MAGIC or len(parts) != 4:
        raise ValueError(f"{path} is not a load-test records file")
    n_streams, n_records = int(parts[2]), int(parts[3])
    records = []
    offset = 0
    for _ in range(n_records):
        end = rest.index(b"\n", offset)
        head_len, body_len, head_tok, body_tok, backref = (
            int(x) for x in rest[offset:end].split(b" ")
        )
        head = rest[end + 1 : end + 1 + head_len]
        body = rest[end + 1 + head_len : end + 1 + head_len + body_len]
        records.append(Record(head, body, bool(head_tok), bool(body_tok), backref))
        offset = end + 1 + head_len + body_len
    return records, n_streams


def substitute(data: bytes, *, stream: int, unique: int, backref: int) -> bytes:
    return (
        data.replace(STREAM_TOKEN, b"%010d" % stream)
        .replace(UNIQUE_TOKEN, b"%010d" % unique)
        .replace(BACKREF_TOKEN, b"%010d" % (unique - backref))
    )


def fill(record: Record, counter: int, n_streams: int) -> bytes:
    """The raw request ``record`` becomes as send number ``counter`` (what replay.lua sends)."""
    stream = counter % n_streams
    head, body = record.head, record.body
    if record.head_tokens:
        head = substitute(head, stream=stream, unique=counter, backref=record.backref)
    if record.body_tokens:
        body = substitute(body, stream=stream, unique=counter, backref=record.backref)
    return head + body


def request_stream(records: Sequence[Record], n_streams: int) -> Iterator[tuple[int, bytes]]:
    """(index of the record sent, raw request) in the order ``replay.lua`` sends them from
    a single thread."""
    counter = 0
    while True:
        for index, record in enumerate(records):
            counter += 1
            if counter <= record.backref:
                yield 0, fill(records[0], counter, n_streams)
            else:
                yield index, fill(record, counter, n_streams)
