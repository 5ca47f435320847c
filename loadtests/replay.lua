-- Replays the raw requests of a records file (format in loadtests/wire.py) round-robin,
-- filling the @STREAM@@@ / @UNIQUE@@@ / @BACKREF@@ tokens on each send, and prints wrk's
-- summary as one JSON line.
-- Usage: wrk -t1 -c16 -d10s -s replay.lua http://127.0.0.1:PORT -- RECORDS_FILE

local next_thread_id = 0

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
end

local records = {}
local n_streams = 1
local index = 1
local counter = 0
local first_counter = 0
-- wrk calls request() once on the first thread right after init(), to check the request
-- parses, and never sends that one: it must not consume a send number
local verification_pending = false

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local streams, count = f:read("*l"):match("^loadtest%-records 2 (%d+) (%d+)$")
  assert(streams, "not a load-test records file: " .. args[1])
  n_streams = tonumber(streams)
  for i = 1, tonumber(count) do
    local h_len, b_len, h_tok, b_tok, backref =
      f:read("*l"):match("^(%d+) (%d+) (%d) (%d) (%d+)$")
    local head = f:read(tonumber(h_len))
    local body = ""
    if tonumber(b_len) > 0 then body = f:read(tonumber(b_len)) end
    records[i] = {
      head = head,
      body = body,
      raw = head .. body,
      head_tokens = h_tok == "1",
      body_tokens = b_tok == "1",
      backref = tonumber(backref),
    }
  end
  f:close()
  -- each thread numbers its sends in its own range: ids never collide across threads
  counter = (thread_id or 0) * 1000000000
  first_counter = counter
  verification_pending = (thread_id or 0) == 0
end

local function fill(text, stream, unique, backref)
  text = text:gsub("@STREAM@@@", stream)
  text = text:gsub("@UNIQUE@@@", string.format("%010d", unique))
  text = text:gsub("@BACKREF@@", string.format("%010d", unique - backref))
  return text
end

function request()
  if verification_pending then
    verification_pending = false
    return records[1].raw
  end
  local r = records[index]
  index = index % #records + 1
  counter = counter + 1
  if counter - first_counter <= r.backref then
    r = records[1]  -- the request it refers back to has not been sent yet
  end
  if not (r.head_tokens or r.body_tokens) then
    return r.raw
  end
  local stream = string.format("%010d", counter % n_streams)
  local head, body = r.head, r.body
  if r.head_tokens then head = fill(head, stream, counter, r.backref) end
  if r.body_tokens then body = fill(body, stream, counter, r.backref) end
  return head .. body
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LOADTEST_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%.1f,"p90":%.1f,"p95":%.1f,"p99":%.1f,"p999":%.1f,'
      .. '"max":%.1f,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
