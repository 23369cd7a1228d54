-- Join the line, or find the place already held. Atomic, one hash slot.
-- KEYS: 1 cfg, 2 seq, 3 q (waiting: visitor -> arrival seq), 4 seenx, 5-7 seen0..2,
--       8 granted (visitor -> claim deadline ms), 9 active (visitor -> session end ms),
--       10 stats
-- ARGV: 1 visitor, 2 now_ms, 3 key ttl seconds
-- Returns {state, rank, waiting, n1, n5, n15, rate, new seq (0: not new), poll cap ms,
--          first admission ms (0: none yet)}
-- state: waiting|admitted|closed|no_event.
local cfg = redis.call('HMGET', KEYS[1], 'closes_at_ms', 'rate', 'closed', 'abandon_ms', 'claim_ms')
if not cfg[1] then return {'no_event', -1, 0, 0, 0, 0, '0', 0, 0, 0} end
-- Polls must come well inside the abandon timeout and the claim window.
local poll_cap = math.floor(math.min(tonumber(cfg[4]), tonumber(cfg[5])) / 3)
local r = redis.call('HMGET', KEYS[10], 'n1', 'n5', 'n15', 'started_ms')
local function out(state, rank, new)
  return {state, rank, redis.call('ZCARD', KEYS[3]), tonumber(r[1]) or 0, tonumber(r[2]) or 0,
    tonumber(r[3]) or 0, cfg[2], new, poll_cap, tonumber(r[4]) or 0}
end
local v, now = ARGV[1], tonumber(ARGV[2])
local ring = seen_ring(KEYS[4], {KEYS[5], KEYS[6], KEYS[7]}, tonumber(cfg[4]), now)
local held = redis.call('ZSCORE', KEYS[3], v)
if held then
  seen_mark(ring, tonumber(held))
  return out('waiting', redis.call('ZRANK', KEYS[3], v), 0)
end
if redis.call('ZSCORE', KEYS[8], v) or redis.call('ZSCORE', KEYS[9], v) then return out('admitted', -1, 0) end
if cfg[3] == '1' or now >= tonumber(cfg[1]) then return out('closed', -1, 0) end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], seq, v)
seen_mark(ring, seq)
local ttl = tonumber(ARGV[3])
for i = 2, 9 do redis.call('EXPIRE', KEYS[i], ttl) end
return out('waiting', redis.call('ZRANK', KEYS[3], v), seq)
