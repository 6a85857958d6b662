-- Requests for bench/run.py. From the environment:
--   BENCH_METHOD, BENCH_BODY, BENCH_AUTH   method, body and Authorization of every request
--   BENCH_PATHS_FILE   optional: one path per line; requests rotate through them (each
--                      thread from its own offset), so polls name distinct task ids
--   BENCH_IDEMPOTENCY  "1": a fresh Idempotency-Key on every request
-- Counts answers by status in every thread and keeps the first non-2xx answer; done()
-- prints them as
--   BENCH_STATUS <status> <count>
--   BENCH_SAMPLE <status> <first 400 bytes of the body>
-- and the whole latency histogram, one line per distinct latency (microseconds), so that
-- runs can be pooled and their percentiles taken over every request of them:
--   BENCH_LATENCY <microseconds> <count>

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH") or "Bearer bench-key"
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local paths_file = os.getenv("BENCH_PATHS_FILE") or ""
local fresh_keys = os.getenv("BENCH_IDEMPOTENCY") == "1"

local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_no", #threads)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  sample = ""
  paths = {}
  if paths_file ~= "" then
    for line in io.lines(paths_file) do
      if line ~= "" then
        table.insert(paths, line)
      end
    end
  end
  next_path = ((thread_no or 0) * 97) % math.max(1, #paths)
  run_id = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  local path = nil
  if #paths > 0 then
    next_path = next_path % #paths + 1
    path = paths[next_path]
  end
  if fresh_keys then
    wrk.headers["Idempotency-Key"] = "bench-" .. run_id .. "-" .. tostring(thread_no) .. "-" .. counter
  end
  return wrk.format(nil, path)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if (status < 200 or status > 299) and sample == "" then
    sample = key .. " " .. string.gsub(string.sub(body or "", 1, 400), "%s+", " ")
  end
end

function done(summary, latency, requests)
  local total = {}
  local first = ""
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get("statuses") or {}) do
      total[key] = (total[key] or 0) + count
    end
    local s = thread:get("sample") or ""
    if first == "" then
      first = s
    end
  end
  for key, count in pairs(total) do
    io.write(string.format("BENCH_STATUS %s %d\n", key, count))
  end
  if first ~= "" then
    io.write("BENCH_SAMPLE " .. first .. "\n")
  end
  -- latency(i): the i-th distinct latency recorded and its count (#latency of them)
  for i = 1, #latency do
    local value, count = latency(i)
    io.write(string.format("BENCH_LATENCY %d %d\n", value, count))
  end
end
