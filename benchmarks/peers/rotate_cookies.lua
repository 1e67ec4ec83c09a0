-- wrk script for benchmarks/peers.py: each request carries the next of many session
-- cookies (read from the file named by the first argument), so the server sees
-- 200 sessions interleaved rather than one hot session. The second argument is the
-- method. done() prints one JSON line the harness parses. There is no response()
-- callback: wrk then skips parsing every response in Lua (load it would put on the core
-- it shares with Redis), and it counts answers of status 400 and above itself.
local cookies = {}
local method = "GET"
local index = 0

function setup(thread)
  thread:set("id", math.random(1000))
end

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then cookies[#cookies + 1] = line end
  end
  method = args[2] or "GET"
  index = (id or 0) % #cookies
end

function request()
  index = index % #cookies + 1
  return wrk.format(method, nil, { ["Cookie"] = cookies[index] }, "")
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "p50_us": %d, "p99_us": %d, "status_errors": %d, "socket_errors": %d}\n',
    summary.requests, seconds, latency:percentile(50), latency:percentile(99), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
