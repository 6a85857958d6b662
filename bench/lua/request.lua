-- One request, repeated: method, body and Authorization come from the environment
-- (BENCH_METHOD, BENCH_BODY, BENCH_AUTH). Counts answers by status in every thread
-- and keeps the first non-2xx answer; done() prints them as
--   BENCH_STATUS <status> <count>
--   BENCH_SAMPLE <status> <first 400 bytes of the body>
-- for bench/run.py to read.

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH") or "Bearer bench-key"
local body = os.getenv("BENCH_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  sample = ""
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
end
