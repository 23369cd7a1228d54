-- An event's live figures, read in one call (read only).
-- KEYS: 1 cfg, 2 q, 3 granted, 4 active, 5 stats, 6 draw, 7 dryq
-- ARGV: 1 now_ms
-- Returns {0} when there is no such event, else
--   {1, phase (event_phase), configuration JSON, paused (1/0), waiting, granted, active,
--    admitted_total, abandoned_total, lapsed_total, n1, n5, n15, first admission ms,
--    mode, pre-queue (event_prequeue), entrants in the draw (so far, or drawn),
--    dry run: waiting, admitted_total, waits summed ms, longest wait ms, longest line,
--    sessions ended by the backend, by timeout, by leaving,
--    the admission rate in force, autopilot on (1/0), its last reason, the backend's
--    p95 ms and error share it acted on ('' without a fresh signal), its last step ms,
--    the proof-of-work difficulty (0: none), the cut (unix s; 0: none), admissions
--    revoked so far}
local ev = event_load(KEYS[1])
if not ev then return {0} end
local now = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[5], 'admitted_total', 'abandoned_total', 'lapsed_total',
  'n1', 'n5', 'n15', 'started_ms')
local out = {1, event_phase(ev, now), redis.call('HGET', KEYS[1], 'json') or '',
  ev.paused and 1 or 0, redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4])}
for i = 1, 7 do out[#out + 1] = tonumber(s[i]) or 0 end
local prequeue = event_prequeue(ev, now)
local entrants = 0
if prequeue == 'drawn' then
  entrants = tonumber(redis.call('HGET', KEYS[6], 'entrants')) or 0
elseif prequeue ~= '' then
  entrants = redis.call('ZCOUNT', KEYS[2], '-inf', ev.prequeue_last)
end
out[#out + 1] = ev.mode
out[#out + 1] = prequeue
out[#out + 1] = entrants
out[#out + 1] = redis.call('ZCARD', KEYS[7])
local d = redis.call('HMGET', KEYS[5], 'dry_admitted_total', 'dry_wait_ms_total',
  'dry_wait_max_ms', 'dry_waiting_max')
for i = 1, 4 do out[#out + 1] = tonumber(d[i]) or 0 end
local e = redis.call('HMGET', KEYS[5], 'ended_backend_total', 'ended_timeout_total',
  'ended_left_total')
for i = 1, 3 do out[#out + 1] = tonumber(e[i]) or 0 end
local ap = redis.call('HMGET', KEYS[1], 'ap_max', 'ap_reason', 'ap_p95_ms', 'ap_error_share',
  'ap_at_ms')
out[#out + 1] = ev.rate_text
out[#out + 1] = (tonumber(ap[1]) or 0) > 0 and 1 or 0
out[#out + 1] = ap[2] or ''
out[#out + 1] = ap[3] or ''
out[#out + 1] = ap[4] or ''
out[#out + 1] = tonumber(ap[5]) or 0
out[#out + 1] = ev.pow_bits
out[#out + 1] = ev.not_before
out[#out + 1] = tonumber(redis.call('HGET', KEYS[5], 'revoked_total')) or 0
return out
