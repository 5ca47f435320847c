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

local TOKENS = { ["@STREAM@@@"] = 1, ["@UNIQUE@@@"] = 2, ["@BACKREF@@"] = 3 }

-- Splits a request at its tokens once, at start-up: literal text and token numbers (1-3)
-- alternate. Filling then costs one concatenation, where gsub over a 500 kB JSON batch
-- for each send made wrk, not the server, the bottleneck.
local function compile(text)
  local parts = {}
  local start, pos = 1, 1
  while true do
    local at = string.find(text, "@", pos, true)
    if not at then break end
    local token = TOKENS[string.sub(text, at, at + 9)]
    if token then
      parts[#parts + 1] = string.sub(text, start, at - 1)
      parts[#parts + 1] = token
      start = at + 10
      pos = start
    else
      pos = at + 1
    end
  end
  parts[#parts + 1] = string.sub(text, start)
  return parts
end

local function fill(parts, values)
  local out = {}
  for i = 1, #parts do
    local part = parts[i]
    out[i] = type(part) == "number" and values[part] or part
  end
  return table.concat(out)
end

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
    local raw = head .. body
    records[i] = {
      raw = raw,
      parts = (h_tok == "1" or b_tok == "1") and compile(raw) or nil,
      backref = tonumber(backref),
    }
  end
  f:close()
  -- each thread numbers its sends in its own range: ids never collide across threads
  counter = (thread_id or 0) * 1000000000
  first_counter = counter
  verification_pending = (thread_id or 0) == 0
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
  if r.parts == nil then
    return r.raw
  end
  return fill(r.parts, {
    string.format("%010d", counter % n_streams),
    string.format("%010d", counter),
    string.format("%010d", counter - r.backref),
  })
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
