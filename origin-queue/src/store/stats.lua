-- An event's live figures, read in one call (read only).
-- KEYS: 1 cfg, 2 q, 3 granted, 4 active, 5 stats, 6 draw, 7 dryq
-- ARGV: 1 now_ms
-- Returns {0} when there is no such event, else STATS_REPLY (reply_shaped, read by name
-- in stats.rs): found (1), phase (event_phase), config (the configuration JSON), paused
-- (1/0), waiting, granted, active, admitted_total, abandoned_total, lapsed_total, n1, n5,
-- n15, started_ms (the first admission), mode, prequeue (event_prequeue),
-- prequeue_entrants (in the draw, so far or drawn), the dry run's waiting,
-- admitted_total, waits summed (ms), longest wait (ms) and longest line, sessions ended
-- by the backend, by timeout, by leaving, rate (in force), autopilot (on: 1/0), its
-- last reason, the backend's p95 ms and error share it acted on ('' without a fresh
-- signal), its last step (ms), pow_bits (0: none), not_before (the cut, unix s; 0:
-- none), revoked_total.
local STATS_REPLY = {'found', 'phase', 'config', 'paused', 'waiting', 'granted', 'active',
  'admitted_total', 'abandoned_total', 'lapsed_total', 'n1', 'n5', 'n15', 'started_ms',
  'mode', 'prequeue', 'prequeue_entrants', 'dry_waiting', 'dry_admitted_total',
  'dry_wait_ms_total', 'dry_wait_max_ms', 'dry_waiting_max', 'ended_backend',
  'ended_timeout', 'ended_left', 'rate', 'autopilot', 'autopilot_reason',
  'autopilot_p95_ms', 'autopilot_error_share', 'autopilot_at_ms', 'pow_bits',
  'not_before', 'revoked_total'}
local ev = event_load(KEYS[1])
if not ev then return {0} end
local now = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[5], 'admitted_total', 'abandoned_total', 'lapsed_total',
  'n1', 'n5', 'n15', 'started_ms', 'dry_admitted_total', 'dry_wait_ms_total',
  'dry_wait_max_ms', 'dry_waiting_max', 'ended_backend_total', 'ended_timeout_total',
  'ended_left_total', 'revoked_total')
local function stat(i) return tonumber(s[i]) or 0 end
local prequeue = event_prequeue(ev, now)
local entrants = 0
if prequeue == 'drawn' then
  entrants = tonumber(redis.call('HGET', KEYS[6], 'entrants')) or 0
elseif prequeue ~= '' then
  entrants = redis.call('ZCOUNT', KEYS[2], '-inf', ev.prequeue_last)
end
local ap = redis.call('HMGET', KEYS[1], 'ap_max', 'ap_reason', 'ap_p95_ms', 'ap_error_share',
  'ap_at_ms')
return reply_shaped(STATS_REPLY, {found = 1, phase = event_phase(ev, now),
  config = redis.call('HGET', KEYS[1], 'json') or '', paused = ev.paused and 1 or 0,
  waiting = redis.call('ZCARD', KEYS[2]), granted = redis.call('ZCARD', KEYS[3]),
  active = redis.call('ZCARD', KEYS[4]), admitted_total = stat(1), abandoned_total = stat(2),
  lapsed_total = stat(3), n1 = stat(4), n5 = stat(5), n15 = stat(6), started_ms = stat(7),
  mode = ev.mode, prequeue = prequeue, prequeue_entrants = entrants,
  dry_waiting = redis.call('ZCARD', KEYS[7]), dry_admitted_total = stat(8),
  dry_wait_ms_total = stat(9), dry_wait_max_ms = stat(10), dry_waiting_max = stat(11),
  ended_backend = stat(12), ended_timeout = stat(13), ended_left = stat(14),
  rate = ev.rate_text, autopilot = (tonumber(ap[1]) or 0) > 0 and 1 or 0,
  autopilot_reason = ap[2] or '', autopilot_p95_ms = ap[3] or '',
  autopilot_error_share = ap[4] or '', autopilot_at_ms = tonumber(ap[5]) or 0,
  pow_bits = ev.pow_bits, not_before = ev.not_before, revoked_total = stat(15)})
