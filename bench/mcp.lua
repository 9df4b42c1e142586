-- wrk script for bench/mcp.sh: POSTs one MCP `tools/call` per request and
-- checks every answer, so errors are counted from the body and not only from
-- the HTTP status.
--
-- Configuration comes from the environment (wrk passes script arguments only
-- to the worker threads, and the setup/done phase needs them too):
--   BENCH_MODE        stateless | legacy | rpc
--                       stateless: /mcp, 2026-07-28 headers and _meta
--                       legacy:    /mcp, 2025-11-25 with BENCH_SESSION
--                       rpc:       /mcp/rpc, plain JSON-RPC
--   BENCH_PATH        request path (default: the URL's)
--   BENCH_TOOL        tool name (whoami, listMyTasks, constant, echo)
--   BENCH_ARGS        the tool's arguments, a JSON object (default {})
--   BENCH_TOKEN       bearer token (empty: no Authorization header)
--   BENCH_SESSION     Mcp-Session-Id for legacy mode
--   BENCH_PER_THREAD  each thread stops after this many checked answers
--
--   BENCH_DONE_DIR    a thread that has finished creates a file here
--
-- A fixed amount of work with wrk (which otherwise runs for a duration):
-- every thread counts its answers in response() and calls
-- wrk.thread:stop() once it has BENCH_PER_THREAD of them. wrk's main thread
-- would still sleep for the whole -d, so a finished thread also creates
-- BENCH_DONE_DIR/thread-N; once every thread has, the shell script sends
-- wrk SIGINT, which ends the sleep and makes wrk report at once. -d is only
-- a safety limit. The run's duration is measured here (monotonic clock,
-- first request sent to last answer counted, over all threads), not taken
-- from wrk, whose figure would include the shell's polling delay. A few
-- answers already on the wire when a thread stops are still counted by
-- wrk; the figures use the answers checked here.
--
-- Every request gets its own JSON-RPC id (ten digits: thread number, then a
-- nine-digit counter), so concurrent requests in one legacy session never
-- share an id. The id has a fixed width, so the request is built once in
-- init() and only the id is spliced in per request.
--
-- done() prints one machine-readable line starting with "BENCH_RESULT".

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_no", thread_count)
  table.insert(threads, thread)
end

-- Per-thread state (globals, so that done() can read them with thread:get).
thread_no = 0
answered = 0
ok = 0
non2xx = 0
rpc_errors = 0
tool_errors = 0
first_error = ""
statuses = {}
started_us = 0
finished_us = 0

local per_thread = 0
local done_dir = ""
local finished = false
local counter = 0
local head, tail

local PLACEHOLDER = "1234567890"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    return default
  end
  return v
end

function init(args)
  local mode = env("BENCH_MODE", "stateless")
  local path = env("BENCH_PATH", wrk.path)
  local tool = env("BENCH_TOOL", "whoami")
  local token = env("BENCH_TOKEN", "")
  local session = env("BENCH_SESSION", "")
  local arguments = env("BENCH_ARGS", "{}")
  per_thread = tonumber(env("BENCH_PER_THREAD", "1000"))
  done_dir = env("BENCH_DONE_DIR", "")

  local headers = { ["Content-Type"] = "application/json" }
  if token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  local params
  if mode == "stateless" then
    headers["Accept"] = "application/json, text/event-stream"
    headers["MCP-Protocol-Version"] = "2026-07-28"
    headers["Mcp-Method"] = "tools/call"
    headers["Mcp-Name"] = tool
    params = '{"name":"' .. tool .. '","arguments":' .. arguments .. ',"_meta":{'
      .. '"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
      .. '"io.modelcontextprotocol/clientCapabilities":{}}}'
  elseif mode == "legacy" then
    headers["Accept"] = "application/json, text/event-stream"
    headers["MCP-Protocol-Version"] = "2025-11-25"
    headers["Mcp-Session-Id"] = session
    params = '{"name":"' .. tool .. '","arguments":' .. arguments .. '}'
  elseif mode == "rpc" then
    params = '{"name":"' .. tool .. '","arguments":' .. arguments .. '}'
  else
    error("unknown BENCH_MODE " .. mode)
  end
  local body = '{"jsonrpc":"2.0","id":' .. PLACEHOLDER
    .. ',"method":"tools/call","params":' .. params .. '}'
  local req = wrk.format("POST", path, headers, body)
  local at = string.find(req, PLACEHOLDER, 1, true)
  head = string.sub(req, 1, at - 1)
  tail = string.sub(req, at + #PLACEHOLDER)
end

function request()
  if counter == 0 then
    started_us = now_us()
  end
  counter = counter + 1
  return head .. string.format("%d%09d", thread_no, counter) .. tail
end

local function note_error(status, body)
  if first_error == "" then
    first_error = "HTTP " .. status .. ": " .. string.sub(body or "", 1, 300)
  end
end

function response(status, headers, body)
  if finished then
    return
  end
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    note_error(status, body)
  elseif string.find(body, '"result":', 1, true) == nil then
    -- No JSON-RPC result: an error object (or something that is not
    -- JSON-RPC at all, which is as bad).
    rpc_errors = rpc_errors + 1
    note_error(status, body)
  elseif string.find(body, '"isError":true', 1, true) ~= nil then
    tool_errors = tool_errors + 1
    note_error(status, body)
  else
    ok = ok + 1
  end
  if answered >= per_thread then
    finished = true
    finished_us = now_us()
    wrk.thread:stop()
    if done_dir ~= "" then
      local f = io.open(done_dir .. "/thread-" .. thread_no, "w")
      if f then
        f:close()
      end
    end
  end
end

function done(summary, latency, requests)
  local t = { answered = 0, ok = 0, non2xx = 0, rpc_errors = 0, tool_errors = 0 }
  local first = ""
  local status_counts = {}
  local started, finished_at, all_finished = nil, 0, true
  for _, thread in ipairs(threads) do
    local s0, s1 = thread:get("started_us") or 0, thread:get("finished_us") or 0
    if s0 > 0 and (started == nil or s0 < started) then
      started = s0
    end
    if s1 == 0 then
      all_finished = false
    elseif s1 > finished_at then
      finished_at = s1
    end
    for k, _ in pairs(t) do
      t[k] = t[k] + (thread:get(k) or 0)
    end
    local fe = thread:get("first_error") or ""
    if first == "" then
      first = fe
    end
    local st = thread:get("statuses") or {}
    for code, n in pairs(st) do
      status_counts[code] = (status_counts[code] or 0) + n
    end
  end
  local codes = {}
  for code, n in pairs(status_counts) do
    table.insert(codes, code .. ":" .. n)
  end
  table.sort(codes)
  -- Our own duration when every thread reached its count; otherwise (the
  -- -d limit ended the run) wrk's.
  local duration = summary.duration
  if all_finished and started ~= nil and finished_at > started then
    duration = finished_at - started
  end
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    "BENCH_RESULT requests=%d answered=%d ok=%d non2xx=%d rpc_errors=%d tool_errors=%d "
      .. "socket_errors=%d timeouts=%d duration_us=%d finished=%s p50_us=%d p90_us=%d "
      .. "p99_us=%d max_us=%d statuses=%s\n",
    summary.requests, t.answered, t.ok, t.non2xx, t.rpc_errors, t.tool_errors,
    socket_errors, e.timeout, duration, tostring(all_finished),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(codes, ",")))
  if first ~= "" then
    io.write("BENCH_FIRST_ERROR " .. string.gsub(first, "[\r\n]+", " ") .. "\n")
  end
end
