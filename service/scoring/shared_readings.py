"""Scored readings in Redis, so a label can reach a reading another replica scored.

One value per commit of the stream store, and an index by reading id:

- ``<ns>:q:<commit>``, a string: the scored requests of one commit back to back, each its
  length-prefixed ids (when the client gave any) then its fixed-size records
  (:mod:`service.scoring.reading_codec`). It expires with the retention
  (``ANOMALY_RECENT_RETENTION_S``): the reading is gone when its record is.
- ``<ns>:g:<id prefix>:<bucket>``, a sorted set of generated ids: one member per request,
  scored by its first sequence number, naming where its records are. A generated id is
  the replica's prefix and a number, so one member covers every reading of the request.
- ``<ns>:c:<bucket>``, a hash from ``<client id>\\0<stream>`` to where that reading's record
  is (the latest such reading wins, as a write replaces the field), and ``<ns>:l:<bucket>``,
  the same fields in a sorted set, so that a lookup without a stream finds every stream
  that carries an id (``ZRANGEBYLEX``).

Index keys are per time bucket (a sixteenth of the retention), so they expire as a whole
a little after the records they point to, instead of a key (and an expiry) per reading,
which made Redis's work grow with every reading. The stream store writes all of this in
its one script call per request (:data:`WRITE_READINGS`); :class:`SharedReadings` reads
it back, in one script call per lookup (:data:`_FIND`).

Each bucket also lists its commits' values with their reading counts (``<ns>:k:<bucket>``)
and its generated-id sets (``<ns>:p:<bucket>``), and ``<ns>:n`` counts the readings of each
bucket and their total, so that the readings of every replica together stay within
``ANOMALY_RECENT_MAX_READINGS``: past it, the oldest values go before their retention ends,
a bucket's index keys with its last value. A fleet scoring faster than the sizing then keeps
a shorter past for labels by id instead of filling Redis, which would refuse every scoring
request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.errors import StreamStateUnavailable
from service.redaction import full_reason, public_reason
from service.scoring.client_ids import AmbiguousReadingId
from service.scoring.reading_chunk import RecentReading
from service.scoring.reading_codec import decode, pack
from service.scoring.scored import ScoredBatch

SharedFinds = dict[str, RecentReading | AmbiguousReadingId]

BUCKETS_PER_RETENTION = 16
# Lua's unpack() is bounded by its C stack: index fields are written this many at a time.
_CHUNK = 2000
# Values a write lets go at most for the bound, so one script call never holds Redis long.
EVICT_PER_CALL = 10_000

# The readings part of the commit script (service.scoring.redis_streams), run after the
# states: ``written[i]`` says whether the i-th stream's state was written, ``at`` is where
# these arguments start: the commit's key, its value, the retention, the index keys' TTL,
# the client-id hash and sorted set, the namespace, the bucket, the oldest bucket that may
# hold a reading within the retention, the value's reading count, the bound on readings kept
# and how many values one call may let go for it; then per scored
# request the (1-based) stream it belongs to, its generated-id sorted set, first sequence
# number and member ('' when every reading has a client id), how many client ids, and
# those ids' fields and pointers. Requests of a stream that moved on stay in the value (its
# offsets are fixed) but are not indexed, so no lookup finds a reading scored on a stale
# state. Sets ``dropped`` to the readings of the values it let go for the bound.
WRITE_READINGS = """
local commit, blob, retention, index_ttl = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
local ckey, lkey, ns = ARGV[at + 4], ARGV[at + 5], ARGV[at + 6]
local bucket, live = tonumber(ARGV[at + 7]), tonumber(ARGV[at + 8])
local count, bound, evict = tonumber(ARGV[at + 9]), tonumber(ARGV[at + 10]), tonumber(ARGV[at + 11])
local any, clients, generated = false, false, {}
at = at + 12
while at <= #ARGV do
  local n = tonumber(ARGV[at + 4])
  if written[tonumber(ARGV[at])] then
    any = true
    if ARGV[at + 3] ~= '' then  -- one ZADD per sorted set below, not one per request
      local members = generated[ARGV[at + 1]] or {}
      members[#members + 1] = ARGV[at + 2]
      members[#members + 1] = ARGV[at + 3]
      generated[ARGV[at + 1]] = members
    end
    for c = 0, n - 1, CHUNK do
      local last = math.min(c + CHUNK, n) - 1
      local lex = {}
      for j = c, last do
        lex[#lex + 1] = 0
        lex[#lex + 1] = ARGV[at + 5 + 2 * j]
      end
      redis.call('HSET', ckey, unpack(ARGV, at + 5 + 2 * c, at + 6 + 2 * last))
      redis.call('ZADD', lkey, unpack(lex))
      clients = true
    end
  end
  at = at + 5 + 2 * n
end
local dropped = 0
if any then
  redis.call('SET', commit, blob, 'PX', retention)
  local pkey = ns .. ':p:' .. bucket
  for key, members in pairs(generated) do
    for c = 1, #members, 2 * CHUNK do
      redis.call('ZADD', key, unpack(members, c, math.min(c + 2 * CHUNK - 1, #members)))
    end
    redis.call('PEXPIRE', key, index_ttl)
    if redis.call('SADD', pkey, key) == 1 then redis.call('PEXPIRE', pkey, index_ttl) end
  end
  if clients then
    redis.call('PEXPIRE', ckey, index_ttl)
    redis.call('PEXPIRE', lkey, index_ttl)
  end
  local kkey = ns .. ':k:' .. bucket
  local listed = redis.call('RPUSH', kkey, count .. '|' .. commit)
  if listed == 1 then redis.call('PEXPIRE', kkey, index_ttl) end
  -- Readings per bucket and their total ('t') over the buckets that may still hold readings
  -- within the retention, in one hash: counted afresh when a bucket starts, added to
  -- otherwise. A bucket being a sixteenth of the retention rounded up to a millisecond, one
  -- passes the retention within 16 ms of a bucket's start (tests' retentions under 16 s
  -- aside, whose buckets are a second).
  local nkey = ns .. ':n'
  local total
  if redis.call('HINCRBY', nkey, bucket, count) == count then
    total = 0
    local fields = redis.call('HGETALL', nkey)
    for i = 1, #fields, 2 do
      local b = tonumber(fields[i])
      if b and b < live then
        redis.call('HDEL', nkey, fields[i])
      elseif b then
        total = total + tonumber(fields[i + 1])
      end
    end
    redis.call('HSET', nkey, 't', total)
    redis.call('PEXPIRE', nkey, index_ttl)
  else
    total = redis.call('HINCRBY', nkey, 't', count)
  end
  if total > bound then
    -- The oldest values go first, at most ``evict`` a call so that Redis, which runs one
    -- script at a time, is never held long; the rest go with the next writes. A bucket
    -- emptied takes its index keys along; the value just written stays.
    local fields, buckets = redis.call('HGETALL', nkey), {}
    for i = 1, #fields, 2 do
      local b = tonumber(fields[i])
      if b then buckets[#buckets + 1] = b end
    end
    table.sort(buckets)
    local budget = evict
    for _, b in ipairs(buckets) do
      if total <= bound or budget == 0 then break end
      local list = ns .. ':k:' .. b
      local keep = b == bucket and 1 or 0
      local entries = redis.call('LRANGE', list, 0, math.min(budget, CHUNK) - 1)
      while #entries > 0 and total > bound and budget > 0 do
        local length = redis.call('LLEN', list)
        local take, keys, gone = 0, {}, 0
        for _, entry in ipairs(entries) do
          if total - gone <= bound or take >= length - keep then break end
          local n, key = string.match(entry, '^(%d+)|(.*)$')
          take = take + 1
          keys[take] = key
          gone = gone + tonumber(n)
        end
        if take == 0 then break end
        redis.call('UNLINK', unpack(keys))
        redis.call('LTRIM', list, take, -1)
        redis.call('HINCRBY', nkey, b, -gone)
        total = total - gone
        dropped = dropped + gone
        budget = budget - take
        if take == length then
          local at_b = ':' .. b
          local sets = redis.call('SMEMBERS', ns .. ':p' .. at_b)
          if #sets > 0 then redis.call('UNLINK', unpack(sets)) end
          redis.call('UNLINK', list, ns .. ':p' .. at_b, ns .. ':c' .. at_b, ns .. ':l' .. at_b)
          redis.call('HDEL', nkey, b)
          break
        end
        entries = redis.call('LRANGE', list, 0, math.min(budget, CHUNK) - 1)
      end
    end
    redis.call('HSET', nkey, 't', total)
  end
end
""".replace("CHUNK", str(_CHUNK))

# ARGV: the namespace, the stream ('' for any), how many buckets, the buckets newest first,
# then the ids. Returns (id's position, stream, record) triples. A client id is looked up
# first, as in one process: the newest bucket holding an id for a stream has its latest
# reading there. Only when no stream carries it as a client id is it read as a generated
# one: the request whose first sequence number is the greatest at or below the id's.
_FIND = """
local ns, only = ARGV[1], ARGV[2]
local nb = tonumber(ARGV[3])
local out = {}
local function record(pointer)
  local key, at, size = string.match(pointer, '^(.*)|(%d+)|(%d+)$')
  local bytes = redis.call('GETRANGE', key, at, tonumber(at) + tonumber(size) - 1)
  if #bytes == tonumber(size) then return bytes end
  return nil
end
local function found(position, stream, pointer)  -- a record gone with its key adds nothing
  local bytes = record(pointer)
  if bytes then
    out[#out + 1] = position
    out[#out + 1] = stream
    out[#out + 1] = bytes
  end
end
for a = 4 + nb, #ARGV do
  local id = ARGV[a]
  local seen = {}
  local any = false
  for b = 4, 3 + nb do
    local fields
    if only ~= '' then
      fields = {id .. '\\0' .. only}
    else
      fields = {}
      local range = redis.call('ZRANGEBYLEX', ns .. ':l:' .. ARGV[b], '[' .. id .. '\\0',
                               '(' .. id .. '\\1')
      for _, f in ipairs(range) do  -- an id that itself holds a NUL sorts in the range too
        if not string.find(f, '\\0', #id + 2, true) then fields[#fields + 1] = f end
      end
    end
    if #fields > 0 then
      local pointers = redis.call('HMGET', ns .. ':c:' .. ARGV[b], unpack(fields))
      for i, f in ipairs(fields) do
        local stream = string.sub(f, #id + 2)
        if pointers[i] and not seen[stream] then
          seen[stream] = true
          any = true
          found(a - 3 - nb, stream, pointers[i])
        end
      end
    end
  end
  local prefix, digits = string.match(id, '^(.-)(%d+)$')
  if not any and prefix and #digits <= 15 then
    local seq = tonumber(digits)
    for b = 4, 3 + nb do
      local hit = redis.call('ZREVRANGEBYSCORE', ns .. ':g:' .. prefix .. ':' .. ARGV[b], seq,
                             '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
      if #hit > 0 then
        local key, at, count, size, ids_at, ids_len, stream =
          string.match(hit[1], '^(.*)|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|(.*)$')
        local row = seq - tonumber(hit[2])
        local mine = row < tonumber(count) and (only == '' or only == stream)
        if mine and tonumber(ids_len) > 0 then  -- a client id may have taken its place
          local ids = redis.call('GETRANGE', key, ids_at, tonumber(ids_at) + tonumber(ids_len) - 1)
          mine = #ids == tonumber(ids_len)  -- else its value is gone: expired, or let go
          if mine then
            local p = 1
            for _ = 1, row do p = p + 2 + string.byte(ids, p) * 256 + string.byte(ids, p + 1) end
            local length = string.byte(ids, p) * 256 + string.byte(ids, p + 1)
            mine = string.sub(ids, p + 2, p + 1 + length) == id
          end
        end
        if mine then found(a - 3 - nb, stream, key .. '|' .. (at + row * size) .. '|' .. size) end
        break
      end
    end
  end
end
return out
"""


class ReadingIndex:
    """Where the scored readings of a namespace live, and for how long."""

    def __init__(
        self,
        namespace: str,
        retention_s: float,
        max_readings: int,
        *,
        evict_per_call: int = EVICT_PER_CALL,
    ) -> None:
        if max_readings < 1:
            raise ValueError(f"max_readings must be >= 1, got {max_readings}")
        self.namespace = namespace
        self.retention_s = retention_s
        self.max_readings = max_readings  # every replica's together
        self.evict_per_call = evict_per_call
        self.retention_ms = max(1, round(retention_s * 1000))
        self.bucket_ms = max(1000, math.ceil(self.retention_ms / BUCKETS_PER_RETENTION))
        # An index bucket outlives the last record written through it, by a bucket more
        # for replicas whose clocks disagree a little.
        self.index_ttl_ms = self.retention_ms + 2 * self.bucket_ms

    def bucket(self, now: float) -> int:
        return math.floor(now * 1000 / self.bucket_ms)

    def search(self, now: float) -> list[int]:
        """The buckets a reading retained at ``now`` may be indexed in, newest first."""
        newest = self.bucket(now) + 1
        oldest = self.bucket(now - self.retention_s) - 1
        return list(range(newest, oldest - 1, -1))

    def commit_key(self, commit: str) -> str:
        return f"{self.namespace}:q:{commit}"

    def write_args(
        self, commit: str, now: float, scored: Sequence[tuple[int, ScoredBatch]]
    ) -> list[str | bytes | int]:
        """The arguments :data:`WRITE_READINGS` takes for these scored requests (each with
        the 1-based position of its stream among the script's keys)."""
        key = self.commit_key(commit)
        bucket = self.bucket(now)
        live = self.bucket(now - self.retention_s)
        parts: list[bytes] = []
        offset = 0
        segments: list[str | bytes | int] = []
        for position, outcome in scored:
            packed = pack(outcome)
            ids_at = offset
            offset += len(packed.ids)
            records_at = offset
            offset += len(packed.records)
            parts += [packed.ids, packed.records]
            size = packed.record_size
            stream = outcome.stream_id
            given = outcome.reading_ids
            member = ""
            if given is None or None in given:
                member = (
                    f"{key}|{records_at}|{packed.count}|{size}|{ids_at}|{len(packed.ids)}|{stream}"
                )
            clients: list[str] = []
            if given is not None:
                for row, reading_id in enumerate(given):
                    if reading_id is not None:
                        clients += [
                            f"{reading_id}\0{stream}",
                            f"{key}|{records_at + row * size}|{size}",
                        ]
            segments += [
                position, f"{self.namespace}:g:{outcome.id_prefix}:{bucket}",
                outcome.seq_start, member, len(clients) // 2, *clients,
            ]  # fmt: skip
        return [
            key, b"".join(parts), self.retention_ms, self.index_ttl_ms,
            f"{self.namespace}:c:{bucket}", f"{self.namespace}:l:{bucket}", self.namespace,
            bucket, live, sum(len(outcome) for _, outcome in scored), self.max_readings,
            self.evict_per_call,
            *segments,
        ]  # fmt: skip


class SharedReadings:
    """Looks up readings by id among every replica's (read side; the store writes)."""

    def __init__(self, client: Redis, *, index: ReadingIndex, clock: Callable[[], float]) -> None:
        self.client = client
        self.index = index
        self.clock = clock
        self._find = client.register_script(_FIND)

    async def find(self, reading_ids: list[str], stream_id: str | None) -> SharedFinds:
        """The retained readings with these ids (of ``stream_id``, if given), in one round
        trip; an id several streams carry, with no stream given, maps to the ambiguity."""
        reading_ids = list(dict.fromkeys(reading_ids))
        now = self.clock()
        buckets = self.index.search(now)
        try:
            reply = await self._find(
                args=[self.index.namespace, stream_id or "", len(buckets), *buckets, *reading_ids]
            )
        except (RedisError, OSError) as exc:
            raise StreamStateUnavailable(
                f"the shared store of recent readings (Redis) did not answer: {public_reason(exc)}",
                cause=full_reason(exc),
            ) from exc
        cutoff = now - self.index.retention_s
        by_id: dict[str, list[RecentReading]] = {}
        for i in range(0, len(reply), 3):
            reading_id = reading_ids[int(reply[i]) - 1]
            stream = reply[i + 1]
            reading = decode(
                reading_id, stream.decode() if isinstance(stream, bytes) else stream, reply[i + 2]
            )
            if reading.received_at >= cutoff:
                by_id.setdefault(reading_id, []).append(reading)
        found: SharedFinds = {}
        for reading_id, readings in by_id.items():
            if len(readings) > 1:
                found[reading_id] = AmbiguousReadingId(
                    reading_id, sorted(r.stream_id for r in readings)
                )
            else:
                found[reading_id] = readings[0]
        return found
