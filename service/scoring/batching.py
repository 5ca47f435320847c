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
from service.scoring.scored import ScoredBatch
from service.scoring.stream_store import LocalStreamStore, StreamStore

MAX_BATCH = 256  # requests scored by one flush; more wait for the next turn


class ReadingBatcher:
    """Queues parsed requests and scores the queue on the next turn of the event loop,
    in arrival order (:meth:`StreamStore.score_many` keeps each stream's order and
    answers every request as if it were scored alone). One flush runs at a time: with
    shared state a flush waits for Redis, and the requests that arrive meanwhile make up
    the next one, so a stream's readings reach the shared state in arrival order.

    With the states in this process nothing is waited for, so a flush is a plain
    callback scoring synchronously (:meth:`LocalStreamStore.score_many_now`): no task and
    no coroutine per turn, the price of the shared store's asynchrony left to it."""

    def __init__(self, store: StreamStore) -> None:
        self._store = store
        self._now = store.score_many_now if isinstance(store, LocalStreamStore) else None
        self._pending: list[tuple[ParsedRequest, asyncio.Future[ScoredBatch]]] = []
        self._scheduled = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps weak references

    async def score(self, parsed: ParsedRequest) -> ScoredBatch:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ScoredBatch] = loop.create_future()
        self._pending.append((parsed, future))
        if not self._scheduled:
            # After the tasks already ready: the requests that arrived with this one.
            self._scheduled = True
            if self._now is not None:
                loop.call_soon(self._flush_now)
            else:
                self._task = loop.create_task(self._flush())
        return await future

    def _flush_now(self) -> None:
        pending, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        self._scheduled = bool(self._pending)
        if self._scheduled:  # the rest on the next turn, after the loop ran
            asyncio.get_running_loop().call_soon(self._flush_now)
        assert self._now is not None
        try:
            outcomes = self._now([parsed for parsed, _ in pending])
        except Exception as exc:  # a bug outside any one request: each gets the error
            outcomes = [exc] * len(pending)
        _answer(pending, outcomes)

    async def _flush(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    outcomes = await self._store.score_many([parsed for parsed, _ in pending])
                except Exception as exc:  # a bug outside any one request: each gets the error
                    outcomes = [exc] * len(pending)
                _answer(pending, outcomes)
                if self._pending:
                    await asyncio.sleep(0)  # let the loop run before the next MAX_BATCH
        finally:
            self._scheduled = False


def _answer(
    pending: list[tuple[ParsedRequest, asyncio.Future[ScoredBatch]]],
    outcomes: list[ScoredBatch | Exception] | list[Exception],
) -> None:
    for (_, future), outcome in zip(pending, outcomes, strict=True):
        if future.done():  # the client left (task cancelled); its reading was scored
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
