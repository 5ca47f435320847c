"""Single-reading requests that are ready at the same moment share one model call.

Under load, the event loop hands the server several requests per turn. Scored one by
one, each pays a full model call (and, once the rest of the request has evicted the
model from the cache, a cold one); scored together, they pay one call for all of them.
Nothing waits for a batch to fill: a request is scored on the loop turn it arrives, with
whichever others arrived in that turn, so a lone request is not delayed.
"""

from __future__ import annotations

import asyncio

from service.scoring.payload import ParsedRequest
from service.scoring.pipeline import ScoringPipeline
from service.scoring.scored import ScoredBatch

MAX_BATCH = 256  # requests scored by one flush; more wait for the next turn


class ReadingBatcher:
    """Queues parsed requests and scores the queue on the next turn of the event loop,
    in arrival order (:meth:`ScoringPipeline.score_many` keeps each stream's order and
    answers every request as if it were scored alone)."""

    def __init__(self, pipeline: ScoringPipeline) -> None:
        self._pipeline = pipeline
        self._pending: list[tuple[ParsedRequest, asyncio.Future[ScoredBatch]]] = []
        self._scheduled = False

    async def score(self, parsed: ParsedRequest) -> ScoredBatch:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ScoredBatch] = loop.create_future()
        self._pending.append((parsed, future))
        if not self._scheduled:
            # After the tasks already ready: the requests that arrived with this one.
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        self._scheduled = bool(self._pending)
        if self._scheduled:
            asyncio.get_running_loop().call_soon(self._flush)
        try:
            outcomes = self._pipeline.score_many([parsed for parsed, _ in pending])
        except Exception as exc:  # a bug outside any one request: each gets the error
            outcomes = [exc] * len(pending)
        for (_, future), outcome in zip(pending, outcomes, strict=True):
            if future.done():  # the client left (task cancelled); its reading was scored
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
