-- Where a batch of visitors of one event stand; claims a grant (granted -> active) for
-- each who has one. origin-queue coalesces concurrent polls into one call, so the reads
-- every poll shares (configuration, ETA windows, line length, poll ring) happen once per
-- batch, not once per visitor.
-- KEYS: 1 cfg, 2 q, 3 seenx, 4-6 seen0..2, 7 granted, 8 active, 9 stats
-- ARGV: 1 now_ms, 2.. visitor ids
-- Returns {0} when there is no such event, else the batch head (event_batch_head),
-- then for each visitor in ARGV order a group of shape STATUS_VISITOR (below).
-- state: waiting (rank) | prequeue (in the opening draw, not run yet; entrants) |
-- admitted (session_end_ms) | expired; granted_ms is set only when this call claimed
-- the grant, else 0.
local now = tonumber(ARGV[1])
local ev = event_load(KEYS[1])
if not ev then return {0} end
local ring = seen_ring(KEYS[3], {KEYS[4], KEYS[5], KEYS[6]}, ev.abandon_ms, now)
local out = event_batch_head(ev, KEYS[9], redis.call('ZCARD', KEYS[2]), seen_recent_joins(ring),
  now)
-- One read for where every visitor of the batch stands in line, and one for their
-- poll marks: a Lua call into Redis costs more than the lookup it makes.
if #ARGV < 2 then return out end
local held = redis.call('ZMSCORE', KEYS[2], unpack(ARGV, 2))
-- Arrival numbers stay the strings ZMSCORE gave (integers, printed exactly): a Lua
-- number would be printed again for BITFIELD, which cost a tenth of the whole call.
local seqs = {}
for i = 1, #held do
  if held[i] then seqs[#seqs + 1] = held[i] end
end
if #seqs > 0 then
  seen_mark_all(ring, seqs)
end
-- After the head, one group per visitor, by name (read in status.rs): the state, and
-- the numbers it carries (0 for the others): rank (waiting, 0-based), entrants
-- (prequeue: in the draw), session_end_ms (admitted), granted_ms (admitted by this very
-- poll: when the grant it claimed was made).
local STATUS_VISITOR = {'state', 'rank', 'entrants', 'session_end_ms', 'granted_ms'}
local entrants = nil
for i = 2, #ARGV do
  local v = ARGV[i]
  local state, x, granted_at = 'expired', -1, 0
  if held[i - 1] and event_in_draw(ev, tonumber(held[i - 1])) then
    entrants = entrants or redis.call('ZCOUNT', KEYS[2], '-inf', ev.prequeue_last)
    state, x = 'prequeue', entrants
  elseif held[i - 1] then
    state, x = 'waiting', redis.call('ZRANK', KEYS[2], v)
  else
    -- Checked one by one, in order: one visitor may poll twice in a batch, and only the
    -- first poll claims the grant.
    local ends = redis.call('ZSCORE', KEYS[8], v)
    if ends then
      state, x = 'admitted', tonumber(ends)
    else
      local deadline = redis.call('ZSCORE', KEYS[7], v)
      if deadline and tonumber(deadline) > now then
        x = now + ev.session_ms
        redis.call('ZREM', KEYS[7], v)
        redis.call('ZADD', KEYS[8], x, v)
        state, granted_at = 'admitted', tonumber(deadline) - ev.claim_ms
      end
    end
  end
  local item = {state = state, rank = 0, entrants = 0, session_end_ms = 0,
    granted_ms = granted_at}
  if state == 'waiting' then item.rank = x
  elseif state == 'prequeue' then item.entrants = x
  elseif state == 'admitted' then item.session_end_ms = x end
  reply_append(out, STATUS_VISITOR, item)
end
return out
