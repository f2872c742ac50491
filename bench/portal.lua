-- wrk script for bench/run.py.
--
--   wrk -t2 -c16 -d15s --latency -s bench/portal.lua http://127.0.0.1:PORT/portal/ -- COOKIES
--
-- COOKIES is a file with one "Cookie" header value per line (a signed-in customer's session);
-- every request carries the cookie of a customer picked at random. Without a file (or with an
-- empty one) requests carry no cookie, as for /healthz.
--
-- When wrk is done, one line "BENCH-RESULT {json}" reports what bench/run.py prints: requests,
-- duration (µs), latency percentiles (µs), and wrk's error counts ("status" counts the
-- responses with a status of 400 or more; wrk does not count 3xx as errors, which is why
-- bench/run.py checks every session's pages before measuring).

local next_thread = 1

function setup(thread)
   thread:set("thread_number", next_thread)
   next_thread = next_thread + 1
end

local requests_by_cookie = {}

function init(args)
   math.randomseed(os.time() + 7919 * (thread_number or 0))
   local path = args[1]
   if path ~= nil and path ~= "" then
      for line in io.lines(path) do
         if line ~= "" then
            -- Formatted once here, so that request() costs a table lookup.
            requests_by_cookie[#requests_by_cookie + 1] = wrk.format(nil, nil, {["Cookie"] = line})
         end
      end
   end
end

function request()
   local n = #requests_by_cookie
   if n == 0 then
      return wrk.format()
   end
   return requests_by_cookie[math.random(n)]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH-RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, '
         .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "errors_status": %d, "errors_connect": %d, '
         .. '"errors_read": %d, "errors_write": %d, "errors_timeout": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
      e.status, e.connect, e.read, e.write, e.timeout))
end
