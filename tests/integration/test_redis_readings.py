"""Scored readings in a real redis-server as one value per commit with an index by id: no
key per reading, lookups by client and generated id across index buckets, and the
retention decides what is found, whichever bucket a reading was indexed in."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis_harness import RedisServer

from service.metrics import Metrics
from service.scoring.client_ids import AmbiguousReadingId
from service.scoring.pipeline import ScoringPipeline
from service.scoring.reading_chunk import RecentReading
from service.scoring.recent import RecentReadings
from service.scoring.redis_streams import RedisStreamStore
from service.scoring.registry import ModelRegistry
from service.scoring.shared_readings import ReadingIndex, SharedReadings
from service.scoring.streams import StreamStates
from service.scoring.thresholds import ThresholdBoard, ThresholdSnapshot
from service.settings import Settings
from service.wire.decode import parse_json

pytestmark = pytest.mark.integration

RETENTION_S = 1600.0  # buckets of 100 s


class Clock:
    """The stores' clock (index buckets, lookups): starts now, moved by the test; readings
    are stamped with their real time of receipt."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Replica:
    """A scoring pipeline, its Redis stream store and the shared readings' reader, on one
    clock the test moves."""

    def __init__(
        self,
        tmp_path: Path,
        models: Path,
        url: str,
        prefix: str,
        *,
        max_readings: int = 100_000,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        registry = ModelRegistry(models, default_model="plant")
        assert not registry.load_all()
        thresholds = ThresholdBoard()
        thresholds.set("plant", ThresholdSnapshot(value=1.0, version=1, baseline=1.0))
        self.clock = Clock()
        self.pipeline = ScoringPipeline(
            Settings(models_dir=models, store_path=tmp_path / "store.sqlite3"),
            registry,
            thresholds,
            StreamStates(100, 3600, clock=self.clock),
            RecentReadings(100_000, RETENTION_S, id_prefix=prefix, clock=self.clock),
            Metrics(CollectorRegistry()),
        )
        self.client = Redis.from_url(url)
        index = ReadingIndex(
            namespace="anomaly", retention_s=RETENTION_S, max_readings=max_readings
        )
        self.store = RedisStreamStore(
            self.pipeline,
            self.client,
            readings=index,
            idle_ttl_s=3600,
            clock=self.clock,
            on_dropped=on_dropped or (lambda _: None),
        )
        self.readings = SharedReadings(self.client, index=index, clock=self.clock)

    async def score(self, body: dict[str, Any]) -> Any:
        parsed = parse_json(orjson.dumps(body), 100_000)
        (outcome,) = await self.store.score_many([parsed])
        assert not isinstance(outcome, Exception), outcome
        return outcome


@pytest.fixture
async def replicas(tmp_path: Path, write_test_artifact: Any, redis_server: RedisServer) -> Any:
    models = tmp_path / "models"
    write_test_artifact(models, "plant", n_sensors=4, threshold=1.0)
    made = [
        Replica(tmp_path / name, models, redis_server.url, prefix=f"{name}-")
        for name in ("ra", "rb")
    ]
    try:
        yield made
    finally:
        for replica in made:
            await replica.client.aclose()


def same(a: RecentReading, b: RecentReading) -> None:
    for field in RecentReading.__slots__:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x is not None and y is not None, field
            assert x.tobytes() == y.tobytes(), field
        else:
            assert x == y, field


async def found_as_held(finder: Replica, holder: Replica, ids: list[str]) -> None:
    """Every id is found through ``finder``'s shared readings, each equal in every field to
    the reading ``holder`` scored and keeps."""
    found = await finder.readings.find(ids, None)
    assert sorted(found) == sorted(ids)
    for reading_id in ids:
        held = holder.pipeline.recent.get(reading_id)
        got = found[reading_id]
        assert held is not None and isinstance(got, RecentReading)
        same(got, held)


async def test_a_large_batch_is_a_few_keys_and_every_reading_is_found_by_id(
    replicas: list[Replica], redis_server: RedisServer
) -> None:
    """More client ids than the script writes in one command (its chunks), with generated
    ids among them: Redis holds a handful of keys, not one per reading, and the other
    replica finds each reading exactly as the scoring replica holds it."""
    a, b = replicas
    rng = np.random.default_rng(5)
    count = 4500
    readings: list[dict[str, Any]] = [
        {"values": row} for row in rng.normal(0, 1.2, size=(count, 4)).round(3).tolist()
    ]
    for i, reading in enumerate(readings):
        if i % 7:  # every seventh generated, the others the client's
            reading["reading_id"] = f"dev-{i}"
    scored = await a.score({"stream_id": "big", "readings": readings})
    admin = redis_server.client()
    try:
        # The state, the value, the client ids' hash and sorted set, the bucket's count and
        # list of values.
        assert admin.dbsize() <= 6
    finally:
        admin.close()
    ids = [
        r.get("reading_id") or f"{scored.id_prefix}{scored.seq_start + i}"
        for i, r in enumerate(readings)
    ]
    picks = [ids[i] for i in (0, 1, 6, 7, 2000, 2001, 3999, 4001, count - 1)]
    await found_as_held(b, a, picks)
    # A generated id whose row carries a client id was never handed out: not found.
    taken = f"{scored.id_prefix}{scored.seq_start + 1}"
    assert await b.readings.find([taken], None) == {}
    assert a.pipeline.recent.get(taken) is None


async def test_ids_are_found_across_buckets_until_the_retention_ends(
    replicas: list[Replica],
) -> None:
    a, b = replicas
    first = await a.score({"stream_id": "s1", "reading": {"values": [1, 0, 0, 0]}})
    generated = f"{first.id_prefix}{first.seq_start}"
    await a.score({"stream_id": "s1", "reading": {"values": [2, 0, 0, 0], "reading_id": "k"}})
    for replica in (a, b):
        replica.clock.now += 700  # seven buckets later
    # The same client id on another stream, scored by the other replica, in a newer bucket.
    await b.score({"stream_id": "s2", "reading": {"values": [3, 0, 0, 0], "reading_id": "k"}})
    # And again on s1, later: a label by id reaches the latest.
    await a.score({"stream_id": "s1", "reading": {"values": [4, 0, 0, 0], "reading_id": "k"}})
    found = await b.readings.find([generated, "k"], None)
    assert isinstance(found[generated], RecentReading)
    assert found[generated].stream_id == "s1"
    ambiguous = found["k"]
    assert isinstance(ambiguous, AmbiguousReadingId) and ambiguous.streams == ["s1", "s2"]
    on_s1 = (await b.readings.find(["k"], "s1"))["k"]
    assert isinstance(on_s1, RecentReading)
    assert on_s1.values.tolist() == [4, 0, 0, 0]
    assert await b.readings.find([generated], "s2") == {}
    for replica in (a, b):
        replica.clock.now += RETENTION_S - 700 + 1  # past every reading's retention
    # Gone, though the newer index buckets are still in Redis.
    assert await b.readings.find([generated, "k"], None) == {}


async def test_readings_of_a_stream_that_moved_on_are_not_indexed(
    replicas: list[Replica],
) -> None:
    """A request scored on a stale copy is scored again: only the reading that was
    answered is found by its id."""
    a, b = replicas
    await a.score({"stream_id": "m", "reading": [0.5, 0, 0, 0]})
    await b.score({"stream_id": "m", "reading": [0.7, 0, 0, 0]})  # a's copy is stale now
    again = await a.score({"stream_id": "m", "reading": {"values": [0.9, 0, 0, 0]}})
    answered = f"{again.id_prefix}{again.seq_start}"
    stale = f"{again.id_prefix}{again.seq_start - 1}"  # the first, discarded scoring
    found = await b.readings.find([answered, stale], None)
    assert list(found) == [answered]


async def test_the_requests_of_one_commit_are_each_found_by_id(replicas: list[Replica]) -> None:
    """Single readings of one turn share one commit (one value, one index write per sorted
    set): every one is found, on its own stream, as the scoring replica holds it."""
    a, b = replicas
    bodies = [
        {"stream_id": f"p{i % 2}", "reading": {"values": [0.2 * i, 0, 0, 1]}} for i in range(5)
    ]
    bodies.append({"stream_id": "p0", "readings": [[1, 1, 0, 0], {"values": [0, 1, 1, 0]}]})
    parsed = [parse_json(orjson.dumps(body), 100) for body in bodies]
    outcomes = await a.store.score_many(parsed)
    ids: list[str] = []
    for outcome in outcomes:
        assert not isinstance(outcome, Exception), outcome
        ids += [f"{outcome.id_prefix}{outcome.seq_start + i}" for i in range(len(outcome.values))]
    await found_as_held(b, a, ids)


async def test_past_the_bound_the_oldest_values_go_and_an_emptied_bucket_takes_its_index(
    tmp_path: Path, write_test_artifact: Any, redis_server: RedisServer
) -> None:
    """Every replica's readings together stay within the bound, whatever the rate: past it
    the oldest values go before their retention ends (an emptied bucket's index keys with
    them), never the one just written, and the count of readings let go is reported."""
    models = tmp_path / "models"
    write_test_artifact(models, "plant", n_sensors=4, threshold=1.0)
    dropped: list[int] = []
    a, b = (
        Replica(
            tmp_path / name, models, redis_server.url, prefix=f"{name}-",
            max_readings=250, on_dropped=dropped.append,
        )
        for name in ("ra", "rb")
    )  # fmt: skip

    def batch(stream: str, name: str, count: int) -> dict[str, Any]:
        return {
            "stream_id": stream,
            "readings": [
                {"values": [i / count, 0, 0, 0], "reading_id": f"{name}-{i}"} for i in range(count)
            ],
        }

    def move(seconds: float) -> None:
        for replica in (a, b):
            replica.clock.now += seconds

    def keys_of(bucket: int) -> list[bytes]:
        return [k for k in admin.keys() if k.endswith(f":{bucket}".encode())]

    admin = redis_server.client()
    try:
        await a.score(batch("s1", "old", 100))
        single = await a.score({"stream_id": "s1", "reading": [0.3, 0, 0, 0]})
        generated = f"{single.id_prefix}{single.seq_start}"
        await b.score(batch("s2", "b-old", 50))
        first = a.store.readings.bucket(a.clock.now)
        move(100)  # the next bucket
        await a.score(batch("s1", "new", 99))
        assert dropped == []  # 250: at the bound, not over it
        old = ["old-0", "old-99", "b-old-0", generated]
        assert sorted(await b.readings.find(old, None)) == sorted(old)
        await b.score(batch("s2", "newer", 1))
        assert dropped == [100]  # the oldest value, no more than the bound needs
        assert sorted(await a.readings.find(old, None)) == ["b-old-0", generated]
        await a.score(batch("s3", "more", 150))
        assert dropped == [100, 51]  # the first bucket emptied: its index goes too
        assert await a.readings.find(old, None) == {}
        assert keys_of(first) == []
        kept = ["new-0", "new-98", "newer-0", "more-149"]
        assert sorted(await b.readings.find(kept, None)) == sorted(kept)
        second = a.store.readings.bucket(a.clock.now)
        move(100)
        await a.score(batch("s1", "big", 300))  # over the bound alone: it stays
        assert dropped == [100, 51, 250]
        assert keys_of(second) == [] and await b.readings.find(kept, None) == {}
        assert len(await b.readings.find(["big-0", "big-299"], None)) == 2
        await b.score(batch("s2", "tiny", 1))  # the bucket being written lets go its oldest
        assert dropped == [100, 51, 250, 300]
        assert list(await a.readings.find(["big-0", "tiny-0"], None)) == ["tiny-0"]
        # Buckets past the retention leave the count when one starts, none let go early:
        # a bucket whose every reading is past it, not one more or less.
        move(RETENTION_S + 300)
        await b.score(batch("s3", "fresh", 10))
        fresh = b.store.readings.bucket(b.clock.now)
        assert admin.hgetall("anomaly:n") == {b"t": b"10", str(fresh).encode(): b"10"}
        bucket_s = b.store.readings.bucket_ms / 1000
        move((fresh + 1) * bucket_s + 0.9 - b.clock.now)
        await b.score(batch("s3", "edge", 3))  # the next bucket
        move(RETENTION_S - 0.4)  # fresh just past the retention, edge not yet
        await b.score(batch("s3", "later", 5))
        assert admin.hget("anomaly:n", "t") == b"8"
        assert len(dropped) == 4
    finally:
        admin.close()
        for replica in (a, b):
            await replica.client.aclose()


async def test_a_write_lets_go_a_bounded_number_of_values_and_later_writes_the_rest(
    tmp_path: Path, write_test_artifact: Any, redis_server: RedisServer
) -> None:
    """Redis runs one script at a time: a write far over the bound (the bound lowered at a
    restart) lets go at most so many values, and the next writes go on."""
    models = tmp_path / "models"
    write_test_artifact(models, "plant", n_sensors=4, threshold=1.0)
    dropped: list[int] = []
    many = Replica(tmp_path / "ra", models, redis_server.url, prefix="ra-")
    for i in range(12):
        await many.score({"stream_id": "s", "reading": [i, 0, 0, 0]})
    await many.client.aclose()
    few = Replica(
        tmp_path / "rb", models, redis_server.url, prefix="rb-",
        max_readings=2, on_dropped=dropped.append,
    )  # fmt: skip
    few.store.readings.evict_per_call = 4
    try:
        for _ in range(3):
            await few.score({"stream_id": "t", "reading": [0, 0, 0, 0]})
        assert dropped == [4, 4, 4]  # 12 + 3 over a bound of 2, 4 values a write
        await few.score({"stream_id": "t", "reading": [0, 0, 0, 0]})
        assert dropped == [4, 4, 4, 2]
    finally:
        await few.client.aclose()
