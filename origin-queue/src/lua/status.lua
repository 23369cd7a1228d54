-- Where a visitor stands; claims a grant (granted -> active) when there is one.
-- KEYS: 1 cfg, 2 q, 3 seenx, 4-6 seen0..2, 7 granted, 8 active, 9 stats
-- ARGV: 1 visitor, 2 now_ms
-- Returns {state, rank_or_session_end, waiting, n1, n5, n15, rate, granted_at_ms, poll cap ms,
--          first admission ms} (granted_at_ms only when this call claimed the grant, else 0)
-- state: waiting|admitted|expired|no_event
local v, now = ARGV[1], tonumber(ARGV[2])
local cfg = redis.call('HMGET', KEYS[1], 'session_ms', 'rate', 'claim_ms', 'abandon_ms')
local session = cfg[1]
if not session then return {'no_event', -1, 0, 0, 0, 0, '0', 0, 0, 0} end
local poll_cap = math.floor(math.min(tonumber(cfg[3]), tonumber(cfg[4])) / 3)
local r = redis.call('HMGET', KEYS[9], 'n1', 'n5', 'n15', 'started_ms')
local function out(state, x, waiting, granted_at)
  return {state, x, waiting, tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or 0, cfg[2],
    granted_at or 0, poll_cap, tonumber(r[4]) or 0}
end
local waiting = redis.call('ZCARD', KEYS[2])
local held = redis.call('ZSCORE', KEYS[2], v)
if held then
  local ring = seen_ring(KEYS[3], {KEYS[4], KEYS[5], KEYS[6]}, tonumber(cfg[4]), now)
  seen_mark(ring, tonumber(held))
  return out('waiting', redis.call('ZRANK', KEYS[2], v), waiting)
end
local ends = redis.call('ZSCORE', KEYS[8], v)
if ends then return out('admitted', tonumber(ends), waiting) end
local deadline = redis.call('ZSCORE', KEYS[7], v)
if deadline and tonumber(deadline) > now then
  local session_end = now + tonumber(session)
  redis.call('ZREM', KEYS[7], v)
  redis.call('ZADD', KEYS[8], session_end, v)
  return out('admitted', session_end, waiting, tonumber(deadline) - tonumber(cfg[3]))
end
return out('expired', -1, waiting)
