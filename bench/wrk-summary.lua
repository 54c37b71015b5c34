-- wrk script of scripts/bench (P7): after a run, prints its figures as one JSON line (requests,
-- requests/s, latency percentiles in µs, and the answers that were not 2xx/3xx or failed at the
-- socket), which scripts/bench keeps next to wrk's own report. No per-request hook: the requests
-- wrk sends are those of a run without a script.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"requests_per_second":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"mean_us":%.1f,"max_us":%d,"non_2xx_3xx":%d,"socket_errors":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
