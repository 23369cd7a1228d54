-- Where a visitor stands; claims a grant (granted -> active) when there is one.
-- KEYS: 1 cfg, 2 q, 3 seen, 4 vis, 5 granted, 6 active, 7 stats
-- ARGV: 1 visitor, 2 now_ms
-- Returns {state, rank_or_session_end, waiting, joined_ms, eta_at_join_ms, n1, n5, n15, rate,
--          granted_at_ms, poll cap ms, first admission ms} (joined/eta/granted only when this call claimed the grant)
-- state: waiting|admitted|expired|no_event
local v, now = ARGV[1], tonumber(ARGV[2])
local cfg = redis.call('HMGET', KEYS[1], 'session_ms', 'rate', 'claim_ms', 'abandon_ms')
local session = cfg[1]
if not session then return {'no_event', -1, 0, 0, 0, 0, 0, 0, '0', 0, 0, 0} end
local poll_cap = math.floor(math.min(tonumber(cfg[3]), tonumber(cfg[4])) / 3)
local r = redis.call('HMGET', KEYS[7], 'n1', 'n5', 'n15', 'started_ms')
local function out(state, x, waiting, joined, eta, granted_at)
  return {state, x, waiting, joined, eta, tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or 0, cfg[2],
    granted_at or 0, poll_cap, tonumber(r[4]) or 0}
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
  return out('admitted', session_end, waiting, tonumber(joined or 0), tonumber(eta or 0),
    tonumber(deadline) - tonumber(cfg[3]))
end
return out('expired', -1, waiting, 0, 0)
