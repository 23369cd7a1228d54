-- A batch of visitors of one event join the line, in arrival order, or find the place
-- each already holds. Atomic, one hash slot. origin-queue coalesces concurrent joins
-- into one call, so the reads every join shares (configuration, ETA windows, poll
-- ring) and the renewal of every key's lifetime happen once per batch.
-- KEYS: 1 cfg, 2 seq, 3 q (waiting: visitor -> arrival seq), 4 seenx, 5-7 seen0..2,
--       8 granted (visitor -> claim deadline ms), 9 active (visitor -> session end ms),
--       10 stats
-- ARGV: 1 now_ms, 2 key ttl seconds, 3.. visitor ids in arrival order (one visitor may
--       come twice: the second finds the place the first took)
-- Returns {0} when there is no such event, else the batch head (event_batch_head),
-- then for each visitor in ARGV order: state, rank (-1 unless waiting), new seq (0: not
-- new). state: waiting|admitted|closed.
local ev = event_load(KEYS[1])
if not ev then return {0} end
local now = tonumber(ARGV[1])
local closed = event_phase(ev, now) == 'closed'
local ring = seen_ring(KEYS[4], {KEYS[5], KEYS[6], KEYS[7]}, ev.abandon_ms, now)
-- The line's length and its recent joins are known once the batch is placed.
local out = event_batch_head(ev, KEYS[10], 0, 0)
local placed = 0
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
    placed = placed + 1
  end
  out[#out + 1] = state
  out[#out + 1] = rank
  out[#out + 1] = new
end
if placed > 0 then
  seen_count_joins(ring, placed)
  local ttl = tonumber(ARGV[2])
  for i = 2, 9 do redis.call('EXPIRE', KEYS[i], ttl) end
end
out[2] = redis.call('ZCARD', KEYS[3])
out[16] = seen_recent_joins(ring)
return out
