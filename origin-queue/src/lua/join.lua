-- A batch of visitors of one event join the line, in arrival order, or find the place
-- each already holds. Atomic, one hash slot. origin-queue coalesces concurrent joins
-- into one call, so the reads every join shares (configuration, ETA windows, poll
-- ring) and the renewal of every key's lifetime happen once per batch.
-- KEYS: 1 cfg, 2 seq, 3 q (waiting: visitor -> arrival seq), 4 seenx, 5-7 seen0..2,
--       8 granted (visitor -> claim deadline ms), 9 active (visitor -> session end ms),
--       10 stats
-- ARGV: 1 now_ms, 2 key ttl seconds, 3.. visitor ids in arrival order (one visitor may
--       come twice: the second finds the place the first took)
-- Returns {0} when there is no such event, else
--   {1, waiting, n1, n5, n15, rate, poll cap ms, first admission ms (0: none yet),
--    opening ms, paused (1/0),
--    then for each visitor in ARGV order: state, rank (-1 unless waiting), new seq (0:
--    not new)}
-- state: waiting|admitted|closed.
local cfg = redis.call('HMGET', KEYS[1], 'closes_at_ms', 'rate', 'closed', 'abandon_ms', 'claim_ms',
  'opens_at_ms', 'paused')
if not cfg[1] then return {0} end
-- Polls must come well inside the abandon timeout and the claim window.
local poll_cap = math.floor(math.min(tonumber(cfg[4]), tonumber(cfg[5])) / 3)
local r = redis.call('HMGET', KEYS[10], 'n1', 'n5', 'n15', 'started_ms')
local now = tonumber(ARGV[1])
local closed = cfg[3] == '1' or now >= tonumber(cfg[1])
local ring = seen_ring(KEYS[4], {KEYS[5], KEYS[6], KEYS[7]}, tonumber(cfg[4]), now)
local out = {1, 0, tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or 0, cfg[2],
  poll_cap, tonumber(r[4]) or 0, tonumber(cfg[6]) or 0, cfg[7] == '1' and 1 or 0}
local placed = false
for i = 3, #ARGV do
  local v = ARGV[i]
  local state, rank, new = 'waiting', -1, 0
  local held = redis.call('ZSCORE', KEYS[3], v)
  if held then
    seen_mark(ring, tonumber(held))
    rank = redis.call('ZRANK', KEYS[3], v)
  elseif redis.call('ZSCORE', KEYS[8], v) or redis.call('ZSCORE', KEYS[9], v) then
    state = 'admitted'
  elseif closed then
    state = 'closed'
  else
    new = redis.call('INCR', KEYS[2])
    redis.call('ZADD', KEYS[3], new, v)
    seen_mark(ring, new)
    rank = redis.call('ZRANK', KEYS[3], v)
    placed = true
  end
  out[#out + 1] = state
  out[#out + 1] = rank
  out[#out + 1] = new
end
if placed then
  local ttl = tonumber(ARGV[2])
  for i = 2, 9 do redis.call('EXPIRE', KEYS[i], ttl) end
end
out[2] = redis.call('ZCARD', KEYS[3])
return out
