"""Where stream states live between requests: the seam between scoring and its state.

:class:`LocalStreamStore` keeps them in this process (:class:`StreamStates`, the default);
:class:`~service.scoring.redis_streams.RedisStreamStore` keeps them in Redis, shared by
every replica. Either way the :class:`ScoringPipeline` does the scoring, on whichever
:class:`~service.scoring.streams.StreamView` the store hands it, and knows no transport.
"""

from __future__ import annotations

from typing import Protocol

from service.scoring.payload import ParsedRequest
from service.scoring.pipeline import ScoringPipeline
from service.scoring.scored import ScoredBatch
from service.scoring.streams import Clock, StreamKey, StreamState, StreamStates


class StreamStore(Protocol):
    """Scores requests against the stream states it holds, and answers for those states."""

    clock: Clock  # the clock of ``StreamState.last_seen``
    shared: bool  # held outside this process (replicas see each other's readings)

    async def score(self, parsed: ParsedRequest, *, reconstruct: bool = True) -> ScoredBatch:
        """One request, as :meth:`ScoringPipeline.score`."""
        ...

    async def score_many(self, requests: list[ParsedRequest]) -> list[ScoredBatch | Exception]:
        """Several requests in order, as :meth:`ScoringPipeline.score_many`."""
        ...

    async def peek(self, key: StreamKey) -> StreamState | None:
        """A stream's state (None when never scored, idle past the TTL or evicted)."""
        ...

    async def drop(self, key: StreamKey) -> bool: ...

    async def drop_model(self, model: str) -> int: ...

    async def problem(self) -> str | None:
        """Why scoring cannot keep state now (a readiness reason), or None."""
        ...

    async def close(self) -> None: ...


class LocalStreamStore:
    """Stream states in this process: the pipeline's own :class:`StreamStates`."""

    shared = False

    def __init__(self, pipeline: ScoringPipeline) -> None:
        self.pipeline = pipeline
        self.states: StreamStates = pipeline.streams
        self.clock = self.states.clock

    async def score(self, parsed: ParsedRequest, *, reconstruct: bool = True) -> ScoredBatch:
        return self.pipeline.score(parsed, reconstruct=reconstruct)

    async def score_many(self, requests: list[ParsedRequest]) -> list[ScoredBatch | Exception]:
        return self.score_many_now(requests)

    def score_many_now(self, requests: list[ParsedRequest]) -> list[ScoredBatch | Exception]:
        """:meth:`score_many` without waiting: in-process states are at hand."""
        return self.pipeline.score_many(requests)

    async def peek(self, key: StreamKey) -> StreamState | None:
        return self.states.peek(key)

    async def drop(self, key: StreamKey) -> bool:
        return self.states.drop(key)

    async def drop_model(self, model: str) -> int:
        return self.states.drop_model(model)

    async def problem(self) -> str | None:
        return None

    async def close(self) -> None:
        return None
