-- The autopilot's step for an event, in two calls. KEYS: 1 cfg, 2 stats.
-- ARGV: 1 'read' | 'write', then for 'write': 2 rate, 3 changed ms, 4 decreased ms,
-- 5 reason, 6 p95 ms (or ''), 7 error share (or ''), 8 now ms, 9 the ap_at_ms read
-- (the write happens only if no other replica stepped since), 10 key ttl seconds,
-- 11 responses in the last fresh window.
-- 'read' returns {} without an event, else AUTOPILOT_READ (reply_shaped, read by name in
-- autopilot.rs): config (the configuration JSON), rate (ap_rate, or ''), changed_ms,
-- decreased_ms, at_ms (ap_at_ms), binding (what limits admission now: rate, slots,
-- line, none) and requests (responses in the last fresh window); 'write' returns 1 if
-- written, 0 if another replica stepped first.
local AUTOPILOT_READ = {'config', 'rate', 'changed_ms', 'decreased_ms', 'at_ms', 'binding',
  'requests'}
if ARGV[1] == 'read' then
  local v = redis.call('HMGET', KEYS[1], 'json', 'ap_rate', 'ap_changed_ms',
    'ap_decreased_ms', 'ap_at_ms', 'ap_requests')
  if not v[1] then return {} end
  return reply_shaped(AUTOPILOT_READ, {config = v[1], rate = v[2] or '',
    changed_ms = tonumber(v[3]) or 0, decreased_ms = tonumber(v[4]) or 0,
    at_ms = tonumber(v[5]) or 0, binding = redis.call('HGET', KEYS[2], 'binding') or '',
    requests = tonumber(v[6]) or 0})
end
if (tonumber(redis.call('HGET', KEYS[1], 'ap_at_ms')) or 0) ~= tonumber(ARGV[9]) then
  return 0
end
redis.call('HSET', KEYS[1], 'ap_rate', ARGV[2], 'ap_changed_ms', ARGV[3],
  'ap_decreased_ms', ARGV[4], 'ap_reason', ARGV[5], 'ap_p95_ms', ARGV[6],
  'ap_error_share', ARGV[7], 'ap_at_ms', ARGV[8], 'ap_requests', ARGV[11])
local ttl = tonumber(ARGV[10])
redis.call('EXPIRE', KEYS[1], ttl)
return 1
