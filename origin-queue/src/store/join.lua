-- A batch of visitors of one event join the line, in arrival order, or find the place
-- each already holds. Atomic, one hash slot. origin-queue coalesces concurrent joins
-- into one call, so the reads every join shares (configuration, ETA windows, poll
-- ring) and the renewal of every key's lifetime happen once per batch.
-- KEYS: 1 cfg, 2 seq, 3 q (waiting: visitor -> arrival seq), 4 seenx, 5-7 seen0..2,
--       8 granted (visitor -> claim deadline ms), 9 active (visitor -> session end ms),
--       10 stats, 11 dryq (passthrough's dry-run line: visitor -> join ms), 12 barred
--       (visitors the operator barred), 13.. the records of used proof-of-work
--       challenges named by the joins below
-- ARGV: 1 now_ms, 2 key ttl seconds, 3 how long a used challenge is remembered
--       (seconds), then per visitor in arrival order (one visitor may come twice: the
--       second finds the place the first took): visitor id, the work shown (-1: none
--       needed, a ticket holder; 0: none; else the solved challenge's difficulty), the
--       index of its challenge's record among KEYS (0: none)
-- Returns {0} when there is no such event, else the batch head (event_batch_head),
-- then for each visitor in ARGV order a group of shape JOIN_VISITOR (below).
-- state: waiting (rank) | prequeue (in the opening draw; entrants so far) | admitted |
-- closed | not_open (the pre-queue opens at opens_at_ms) | revoked (barred by the
-- operator) | pow_required (pow_bits: the difficulty asked now) | pow_replayed (the
-- challenge's solution already took a place); new_seq: the new place's seq (0: not new). Only a new place asks for work and
-- spends a solution: a visitor who holds one finds it again.
local ev = event_load(KEYS[1])
if not ev then return {0} end
local now = tonumber(ARGV[1])
local closed = event_phase(ev, now) == 'closed' or ev.mode == 'reject'
local prequeue = event_prequeue(ev, now)
local ring = seen_ring(KEYS[4], {KEYS[5], KEYS[6], KEYS[7]}, ev.abandon_ms, now)
-- The line's length and its recent joins are known once the batch is placed.
local out = event_batch_head(ev, KEYS[10], 0, 0, now)
local placed = 0
local entrants = nil
local function place_of(seq, v)
  if event_in_draw(ev, seq) then
    entrants = entrants or redis.call('ZCOUNT', KEYS[3], '-inf', ev.prequeue_last)
    return 'prequeue', entrants
  end
  return 'waiting', redis.call('ZRANK', KEYS[3], v)
end
-- After the head, one group per visitor, by name (read in join.rs): the state, and the
-- one number that state carries (0 for the others): rank (waiting, 0-based), entrants
-- (prequeue: in the draw), opens_at_ms (not_open: the pre-queue opens then), pow_bits
-- (pow_required: the difficulty asked); new_seq: the arrival number of a place taken
-- now (0: none).
local JOIN_VISITOR = {'state', 'rank', 'entrants', 'opens_at_ms', 'pow_bits', 'new_seq'}
local used_ttl = tonumber(ARGV[3])
for i = 4, #ARGV, 3 do
  local v, work, used = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local state, x, new = 'waiting', -1, 0
  local held = redis.call('ZSCORE', KEYS[3], v)
  if held then
    seen_mark(ring, tonumber(held))
    state, x = place_of(tonumber(held), v)
  elseif redis.call('ZSCORE', KEYS[8], v) or redis.call('ZSCORE', KEYS[9], v) then
    state = 'admitted'
  elseif closed then
    state = 'closed'
  elseif prequeue == 'not_open' then
    state, x = 'not_open', ev.prequeue_opens_at_ms
  elseif redis.call('ZSCORE', KEYS[12], v) then
    state = 'revoked'
  elseif work >= 0 and work < ev.pow_bits then
    state, x = 'pow_required', ev.pow_bits
  elseif used > 0 and not redis.call('SET', KEYS[used], '1', 'NX', 'EX', used_ttl) then
    state = 'pow_replayed'
  elseif ev.mode == 'passthrough' then
    -- Everyone in at once; the dry-run line records what would have happened.
    redis.call('ZADD', KEYS[8], now + ev.claim_ms, v)
    redis.call('ZADD', KEYS[11], now, v)
    state = 'admitted'
    placed = placed + 1
  else
    new = redis.call('INCR', KEYS[2])
    redis.call('ZADD', KEYS[3], new, v)
    seen_mark(ring, new)
    if prequeue == 'open' then
      ev.prequeue_last = new
      if entrants then entrants = entrants + 1 end
    end
    state, x = place_of(new, v)
    placed = placed + 1
  end
  local item = {state = state, rank = 0, entrants = 0, opens_at_ms = 0, pow_bits = 0,
    new_seq = new}
  if state == 'waiting' then item.rank = x
  elseif state == 'prequeue' then item.entrants = x
  elseif state == 'not_open' then item.opens_at_ms = x
  elseif state == 'pow_required' then item.pow_bits = x end
  reply_append(out, JOIN_VISITOR, item)
end
if placed > 0 then
  seen_count_joins(ring, placed)
  if prequeue == 'open' then redis.call('HSET', KEYS[1], 'prequeue_last', ev.prequeue_last) end
  local ttl = tonumber(ARGV[2])
  for i = 2, 11 do redis.call('EXPIRE', KEYS[i], ttl) end
end
reply_set(out, BATCH_HEAD, 'waiting', redis.call('ZCARD', KEYS[3]))
reply_set(out, BATCH_HEAD, 'recent_joins', seen_recent_joins(ring))
return out
