-- Where a visitor stands; claims a grant (granted -> active) when there is one.
-- KEYS: 1 cfg, 2 q, 3 seen, 4 vis, 5 granted, 6 active, 7 stats
-- ARGV: 1 visitor, 2 now_ms
-- Returns {state, rank_or_session_end, waiting, joined_ms, eta_at_join_ms, n1, n5, n15, rate}
-- state: waiting|admitted|expired|no_event
local v, now = ARGV[1], tonumber(ARGV[2])
local cfg = redis.call('HMGET', KEYS[1], 'session_ms', 'rate')
local session = cfg[1]
if not session then return {'no_event', -1, 0, 0, 0, 0, 0, 0, '0'} end
local r = redis.call('HMGET', KEYS[7], 'n1', 'n5', 'n15')
local function out(state, x, waiting, joined, eta)
  return {state, x, waiting, joined, eta, tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or 0, cfg[2]}
end
local waiting = redis.call('ZCARD', KEYS[2])
local rank = redis.call('ZRANK', KEYS[2], v)
if rank then
  redis.call('ZADD', KEYS[3], now, v)
  return out('waiting', rank, waiting, 0, 0)
end
local ends = redis.call('ZSCORE', KEYS[6], v)
if ends then return out('admitted', tonumber(ends), waiting, 0, 0) end
local deadline = redis.call('ZSCORE', KEYS[5], v)
if deadline and tonumber(deadline) > now then
  local session_end = now + tonumber(session)
  redis.call('ZREM', KEYS[5], v)
  redis.call('ZADD', KEYS[6], session_end, v)
  local rec = redis.call('HGET', KEYS[4], v) or '0:0:-1'
  local _, _, joined, eta = string.find(rec, '^%d+:(%d+):(-?%d+)$')
  return out('admitted', session_end, waiting, tonumber(joined or 0), tonumber(eta or 0))
end
return out('expired', -1, waiting, 0, 0)
