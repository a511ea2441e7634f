-- wrk script for bench/run.py: POST pre-signed Stripe events, one per request.
--
--   wrk -t T -c C -d D --latency -s bench/intake.lua URL -- BODIES_DIR
--
-- BODIES_DIR holds bodies.<thread>.txt (one per wrk thread), each line "<Stripe-Signature>\t<json>".
-- Every line has its own event id, so as long as a thread does not run out of lines every
-- request is a new event. If it does, it starts over and those requests come back "duplicate";
-- they are counted separately (and reported by run.py), never mixed into "stored".
-- done() prints one line "BENCH_JSON {...}" for run.py to parse.

local counter = 0
local threads = {}

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

function init(args)
   local path = args[1] .. "/bodies." .. id .. ".txt"
   requests_ = {}
   for line in io.lines(path) do
      local tab = line:find("\t", 1, true)
      local headers = {
         ["Content-Type"] = "application/json",
         ["Stripe-Signature"] = line:sub(1, tab - 1),
      }
      requests_[#requests_ + 1] = wrk.format("POST", nil, headers, line:sub(tab + 1))
   end
   n = #requests_
   i = 0
   generated = 0
   wraps = 0
   stored, duplicate, ignored, other, non200 = 0, 0, 0, 0, 0
end

function request()
   i = i + 1
   if i > n then
      i = 1
      wraps = wraps + 1
   end
   generated = generated + 1
   return requests_[i]
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
   elseif body:find('"status": "stored"', 1, true) then
      stored = stored + 1
   elseif body:find('"status": "duplicate"', 1, true) then
      duplicate = duplicate + 1
   elseif body:find('"status": "ignored"', 1, true) then
      ignored = ignored + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local t = { generated = 0, wraps = 0, stored = 0, duplicate = 0, ignored = 0, other = 0, non200 = 0,
               bodies = 0 }
   for _, thread in ipairs(threads) do
      t.generated = t.generated + thread:get("generated")
      t.wraps = t.wraps + thread:get("wraps")
      t.bodies = t.bodies + thread:get("n")
      t.stored = t.stored + thread:get("stored")
      t.duplicate = t.duplicate + thread:get("duplicate")
      t.ignored = t.ignored + thread:get("ignored")
      t.other = t.other + thread:get("other")
      t.non200 = t.non200 + thread:get("non200")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"responses": %d, "duration_us": %d, "generated": %d, "bodies": %d, "wraps": %d, ' ..
      '"stored": %d, "duplicate": %d, "ignored": %d, "other": %d, "non200": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
      summary.requests, summary.duration, t.generated, t.bodies, t.wraps,
      t.stored, t.duplicate, t.ignored, t.other, t.non200,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
