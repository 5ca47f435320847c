"""Stream states in Redis, shared by every replica: optimistic concurrency, one round trip.

Each stream is a hash ``<ns>:s:<model>:<stream>`` holding its packed state
(:mod:`service.scoring.stream_codec`) and a revision: a token no other write can repeat, so
a state that expired and was built again is never mistaken for the one a replica holds.

A replica keeps a copy of the states it last wrote or read (``StreamStates``, bounded as
in-process states are). A request is scored on those copies, in Python as ever; then one
script call (:data:`_COMMIT`) writes every changed stream whose revision in Redis is still
the one the copy came from, with the scored readings of those streams for feedback, and
returns the current state of every stream that moved on meanwhile. The requests of those
streams are scored again on the returned states, and so on, a bounded number of times.
A stream whose readings stay on one replica costs one round trip per request; one whose
readings alternate costs two, as every other request finds the copy stale.

Requests of one replica are committed one at a time (a lock), so a stream's readings reach
Redis in the order the replica received them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from service.errors import StreamContention, StreamStateUnavailable
from service.redaction import ChangeLog, full_reason, public_reason
from service.scoring import shared_readings
from service.scoring.breaker import Breaker
from service.scoring.payload import ParsedRequest
from service.scoring.pipeline import ScoringPipeline
from service.scoring.scored import ScoredBatch
from service.scoring.stream_codec import StateFormatError, encode, restore
from service.scoring.streams import Clock, StreamKey, StreamState, StreamStates

ATTEMPTS = 5  # scorings of a request whose stream other replicas keep moving on
PROBE_TTL_MS = 60_000  # the readiness check's own key

# KEYS: the streams. ARGV: the idle TTL in ms, then per stream its expected revision, new
# revision and state; then the scored readings (shared_readings.WRITE_READINGS). Returns
# how many readings it let go for the bound on readings kept, then per stream that moved
# on its position, revision and state ('' when it is gone).
_COMMIT = (
    """
local ttl = tonumber(ARGV[1])
local written, moved = {}, {}
for i, key in ipairs(KEYS) do
  local at = 2 + (i - 1) * 3
  local current = redis.call('HMGET', key, 'r', 's')
  local revision = current[1] or ''
  if revision == ARGV[at] then
    redis.call('HSET', key, 'r', ARGV[at + 1], 's', ARGV[at + 2])
    redis.call('PEXPIRE', key, ttl)
    written[i] = true
  else
    moved[#moved + 1] = i
    moved[#moved + 1] = revision
    moved[#moved + 1] = current[2] or ''
  end
end
local at = 2 + #KEYS * 3
"""
    + shared_readings.WRITE_READINGS
    + "table.insert(moved, 1, dropped)\nreturn moved\n"
)

logger = logging.getLogger(__name__)


def failure_reason(exc: BaseException) -> str:
    """A failed Redis call, as one of :data:`service.metrics.STREAM_STATE_FAILURES`."""
    if isinstance(exc, OutOfMemoryError):
        return "full"
    if isinstance(exc, RedisTimeout | TimeoutError):
        return "timeout"
    if isinstance(exc, RedisConnectionError | OSError):
        return "unreachable"
    return "refused"


def stream_key(namespace: str, key: StreamKey) -> str:
    model, stream = key
    return f"{namespace}:s:{len(model)}:{model}:{stream}"


def _ignore(_: object) -> None:
    return None


class _Staged:
    """One attempt's view of the states: the replica's copies, changed in place; what the
    pipeline commits waits here for Redis."""

    def __init__(self, copies: StreamStates, unusable: dict[StreamKey, str], clock: Clock) -> None:
        self.copies = copies
        self.unusable = unusable
        self.clock = clock
        self.expected: dict[StreamKey, str] = {}
        self.changed: dict[StreamKey, StreamState] = {}

    def peek(self, key: StreamKey) -> StreamState | None:
        if key in self.changed:  # an earlier run of this attempt moved it on
            return self.changed[key]
        state = self.copies.peek(key)
        if state is not None:
            self.expected.setdefault(key, state.revision)
        else:  # none, or one this replica cannot use: start afresh over it
            self.expected.setdefault(key, self.unusable.get(key, ""))
        return state

    def commit(self, key: StreamKey, state: StreamState) -> None:
        state.last_seen = self.clock()
        self.changed[key] = state


class RedisStreamStore:
    """Stream states (and scored readings for feedback) in Redis."""

    shared = True

    def __init__(
        self,
        pipeline: ScoringPipeline,
        client: Redis,
        *,
        readings: shared_readings.ReadingIndex,
        idle_ttl_s: float,
        clock: Clock = time.time,
        on_failure: Callable[[str], None] = _ignore,
        on_dropped: Callable[[int], None] = _ignore,
        breaker: Breaker | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.client = client
        self.namespace = readings.namespace
        self.readings = readings
        self.copies: StreamStates = pipeline.streams  # this replica's copies, bounded
        self.clock = clock
        self.on_failure = on_failure  # a failed write's reason (STREAM_STATE_FAILURES)
        self.on_dropped = on_dropped  # readings let go for the bound on readings kept
        self.breaker = breaker if breaker is not None else Breaker(0)
        # The size of the last commit Redis refused for memory, until one is written: the
        # request's own arguments count toward maxmemory, so a full Redis may still take a
        # small write (the readiness probe's) while refusing every batch.
        self._refused_bytes = 0
        self._probe_log = ChangeLog(logger, "readiness: stream state store (Redis)")
        self._ttl_ms = max(1, round(idle_ttl_s * 1000))
        self._commit_script = client.register_script(_COMMIT)
        self._lock = asyncio.Lock()
        self._token = os.urandom(6).hex()
        self._revisions = itertools.count(1)
        # Revisions of states in Redis this replica cannot restore (another window, or
        # idle by this replica's clock): a fresh state replaces them.
        self._unusable: dict[StreamKey, str] = {}

    # --- scoring ------------------------------------------------------------------------
    async def score(self, parsed: ParsedRequest, *, reconstruct: bool = True) -> ScoredBatch:
        def compute(view: _Staged, requests: list[ParsedRequest]) -> list[ScoredBatch | Exception]:
            try:
                return [self.pipeline.compute(requests[0], view, reconstruct=reconstruct)]
            except Exception as exc:
                return [exc]

        (outcome,) = await self._score([parsed], compute)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def score_many(self, requests: list[ParsedRequest]) -> list[ScoredBatch | Exception]:
        return await self._score(
            requests, lambda view, batch: self.pipeline.compute_many(batch, view)
        )

    async def _score(
        self,
        requests: list[ParsedRequest],
        compute: Callable[[_Staged, list[ParsedRequest]], list[ScoredBatch | Exception]],
    ) -> list[ScoredBatch | Exception]:
        results: list[ScoredBatch | Exception | None] = [None] * len(requests)
        todo = list(range(len(requests)))
        async with self._lock:
            if self.breaker.open():
                self.on_failure("breaker_open")
                refused = StreamStateUnavailable(
                    "the stream state store (Redis) timed out moments ago: requests are "
                    f"refused at once for up to {self.breaker.open_s:g} s before it is tried "
                    "again"
                )
                return [refused] * len(requests)
            for _ in range(ATTEMPTS):
                view = _Staged(self.copies, self._unusable, self.clock)
                try:
                    outcomes = compute(view, [requests[i] for i in todo])
                except BaseException:
                    self._forget(view)  # copies may be half changed
                    raise
                try:
                    moved = await self._commit(view, outcomes)
                except StreamStateUnavailable as exc:
                    for i in todo:
                        results[i] = exc
                    todo = []
                    break
                again: list[int] = []
                for i, outcome in zip(todo, outcomes, strict=True):
                    if self._key(requests[i]) in moved:
                        again.append(i)  # scored on a stale copy: its stream moved on
                        continue
                    if not isinstance(outcome, Exception):
                        self.pipeline.record(outcome)
                    results[i] = outcome
                todo = again
                if not todo:
                    break
        for i in todo:
            results[i] = StreamContention(
                f"stream {requests[i].stream_id!r} was updated by other replicas during each "
                f"of {ATTEMPTS} attempts; retry the request"
            )
        return [r for r in results if r is not None]

    def _key(self, parsed: ParsedRequest) -> StreamKey | None:
        try:
            return self.pipeline.registry.get(parsed.model).name, parsed.stream_id
        except Exception:  # an unknown model: refused whatever the state
            return None

    async def _commit(
        self, view: _Staged, outcomes: Sequence[ScoredBatch | Exception]
    ) -> set[StreamKey | None]:
        """Write the changed states and their readings; the streams that moved on."""
        keys = list(view.changed)
        if not keys:
            return set()
        position = {key: i for i, key in enumerate(keys, start=1)}
        args: list[str | bytes | int] = [self._ttl_ms]
        revisions: dict[StreamKey, str] = {}
        for key in keys:
            revisions[key] = f"{self._token}:{next(self._revisions)}"
            args += [view.expected.get(key, ""), revisions[key], encode(view.changed[key])]
        scored = [
            (position[(outcome.model.name, outcome.stream_id)], outcome)
            for outcome in outcomes
            if not isinstance(outcome, Exception)
        ]
        commit = f"{self._token}:{next(self._revisions)}"
        args += self.readings.write_args(commit, self.clock(), scored)
        try:
            reply = await self._commit_script(
                keys=[stream_key(self.namespace, key) for key in keys], args=args
            )
        except (RedisError, OSError) as exc:
            self._forget(view)  # changed in place but not kept: Redis' copy is the truth
            reason = failure_reason(exc)
            self.on_failure(reason)
            self.breaker.failed(reason)
            if reason == "full":
                self._refused_bytes = sum(
                    len(arg) if isinstance(arg, bytes | str) else 8 for arg in args
                )
                raise StreamStateUnavailable(
                    f"the stream state store (Redis) is full and refuses writes: {exc}"
                ) from exc
            raise StreamStateUnavailable(
                f"the stream state store (Redis) did not answer: {public_reason(exc)}",
                cause=full_reason(exc),
            ) from exc
        self._refused_bytes = 0
        self.breaker.succeeded()
        if int(reply[0]):
            self.on_dropped(int(reply[0]))
        moved: set[StreamKey | None] = set()
        for i in range(1, len(reply), 3):
            key = keys[int(reply[i]) - 1]
            moved.add(key)
            self._adopt(key, _text(reply[i + 1]), _raw(reply[i + 2]))
        for key in keys:
            if key not in moved:
                state = view.changed[key]
                state.revision = revisions[key]
                self.copies.commit(key, state)
                self._unusable.pop(key, None)
        return moved

    def _forget(self, view: _Staged) -> None:
        for key in (*view.expected, *view.changed):
            self.copies.drop(key)

    def _adopt(self, key: StreamKey, revision: str, blob: bytes) -> None:
        """Take Redis' state of a stream as this replica's copy ('' revision: none there)."""
        self.copies.drop(key)
        self._unusable.pop(key, None)
        if not revision:
            return
        state = self._decode(key, blob)
        if state is None:
            if len(self._unusable) >= self.copies.capacity:
                self._unusable.clear()  # bounded; a forgotten one costs one more round trip
            self._unusable[key] = revision
        else:
            state.revision = revision
            self.copies.commit(key, state)

    def _decode(self, key: StreamKey, blob: bytes) -> StreamState | None:
        try:
            model = self.pipeline.registry.get(key[0])
        except Exception:
            return None
        state = self.pipeline.new_state(model, self.clock())
        try:
            restore(state, blob)
        except StateFormatError:  # written for another window: the stream starts again
            return None
        last_seen = state.last_seen
        if self.clock() - last_seen > self.copies.idle_ttl_s:
            return None
        return state

    # --- the rest of the store ----------------------------------------------------------
    async def peek(self, key: StreamKey) -> StreamState | None:
        try:
            blob = await self.client.hget(stream_key(self.namespace, key), "s")
        except (RedisError, OSError) as exc:
            raise StreamStateUnavailable(
                f"the stream state store (Redis) did not answer: {public_reason(exc)}",
                cause=full_reason(exc),
            ) from exc
        return None if blob is None else self._decode(key, _raw(blob))

    async def drop(self, key: StreamKey) -> bool:
        self.copies.drop(key)
        async with self._lock:
            removed = await self.client.delete(stream_key(self.namespace, key))
        return bool(removed)

    async def drop_model(self, model: str) -> int:
        self.copies.drop_model(model)
        pattern = stream_key(self.namespace, (model, "*"))
        removed = 0
        async with self._lock:
            async for name in self.client.scan_iter(match=pattern, count=1000):
                removed += int(await self.client.delete(name))
        return removed

    async def problem(self) -> str | None:
        """Unreachable, or full: at ``maxmemory`` with ``noeviction`` Redis still answers a
        ping but refuses writes, so the check is a small expiring write and, after a commit
        was refused for memory, whether one that size would fit now."""
        full = (
            "stream state store (Redis) is full: {}; scoring answers 503 until memory is "
            "freed or maxmemory raised"
        )
        try:
            await self.client.set(f"{self.namespace}:ready", b"", px=PROBE_TTL_MS)
            if self._refused_bytes:
                memory = await self.client.info("memory")
                used, limit = int(memory["used_memory"]), int(memory["maxmemory"])
                if limit and used + self._refused_bytes >= limit:
                    reason = full.format(
                        f"{used:,} of maxmemory {limit:,} bytes used, and it refused a "
                        f"write of {self._refused_bytes:,} bytes"
                    )
                    self._probe_log.failed(reason)
                    return reason
        except OutOfMemoryError as exc:
            reason = full.format(f"it refuses writes ({exc})")
            self._probe_log.failed(reason)
            return reason
        except (RedisError, OSError) as exc:
            self._probe_log.failed(f"unreachable: {full_reason(exc)}")
            return f"stream state store (Redis) unreachable: {public_reason(exc)}"
        self._probe_log.fine()
        return None

    async def close(self) -> None:
        await self.client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
