"""Client reading ids of the recently scored readings: which chunk holds each stream's
latest reading with a given id."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.scoring.reading_chunk import ReadingChunk

    _Entry = tuple[str, ReadingChunk] | dict[str, ReadingChunk]


class AmbiguousReadingId(LookupError):
    """A client reading id that several streams' retained readings carry."""

    def __init__(self, reading_id: str, streams: list[str]) -> None:
        super().__init__(reading_id, streams)
        self.reading_id = reading_id
        self.streams = streams


class ClientIds:
    """Client reading ids → the chunk holding each stream's latest reading with that id.

    Ids are the client's own, so two streams may use the same one (per-device counters): an
    id of one stream holds a (stream, chunk) pair, one that several streams use holds a dict
    by stream, so a lookup can tell them apart instead of labelling the wrong reading.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def add(self, chunk: ReadingChunk) -> None:
        if chunk.ids is None:
            return
        entries = self._entries
        streams = chunk.stream_ids
        if len(set(streams)) == 1:
            given = [i for i in chunk.ids if i is not None]
            if entries.keys().isdisjoint(given):  # the usual case, at C speed
                entries.update(dict.fromkeys(given, (streams[0], chunk)))
                return
        for reading_id, stream in zip(chunk.ids, streams, strict=True):
            if reading_id is None:
                continue
            entry = entries.get(reading_id)
            if entry is None or (isinstance(entry, tuple) and entry[0] == stream):
                entries[reading_id] = (stream, chunk)
            elif isinstance(entry, tuple):
                entries[reading_id] = {entry[0]: entry[1], stream: chunk}
            else:
                entry[stream] = chunk

    def discard(self, chunk: ReadingChunk) -> None:
        """Forget the ids whose latest reading (per stream) sits in ``chunk``."""
        if chunk.ids is None:
            return
        entries = self._entries
        for reading_id, stream in zip(chunk.ids, chunk.stream_ids, strict=True):
            entry = entries.get(reading_id) if reading_id is not None else None
            if entry is None:
                continue
            if isinstance(entry, tuple):
                if entry[1] is chunk:
                    del entries[reading_id]  # type: ignore[arg-type]
            elif entry.get(stream) is chunk:
                del entry[stream]
                if len(entry) == 1:
                    entries[reading_id] = next(iter(entry.items()))  # type: ignore[index]

    def candidates(self, reading_id: str, stream_id: str | None) -> list[tuple[str, ReadingChunk]]:
        entry = self._entries.get(reading_id)
        if entry is None:
            return []
        pairs = [entry] if isinstance(entry, tuple) else list(entry.items())
        return [pair for pair in pairs if stream_id is None or pair[0] == stream_id]

    def __contains__(self, reading_id: object) -> bool:
        return reading_id in self._entries


def is_sequence(text: str) -> bool:
    """A generated id's sequence number: ASCII digits only ("²".isdigit() is true too, and
    int() refuses it) and short enough for int() (which refuses over 4,300 digits)."""
    return 0 < len(text) <= 20 and text.isascii() and text.isdigit()
