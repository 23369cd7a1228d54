-- Prelude shared by join, status and admit: who is still polling, by arrival number.
-- Three rotating bitmaps (seen0..2), bit = arrival seq, each covering one epoch of
-- E = max(1 s, abandon_ms / 2); the hash seenx remembers E, the epoch each bitmap holds
-- and the sweep cursor. A waiting visitor is alive while its bit is set in the current
-- epoch or one of the two before it, so one who stops polling is dropped between
-- abandon_ms and 1.5 x abandon_ms later. That costs a few bits per visitor instead of a
-- sorted-set entry. While the ring does not hold three consecutive epochs under the
-- current E (a new event, E just changed, the admission loop was down), nobody is
-- dropped: the check errs towards keeping people in line.
local function seen_ring(seenx, bitmaps, abandon_ms, now)
  local len = math.max(1000, math.ceil(abandon_ms / 2))
  local e = math.floor(now / len)
  local x = redis.call('HMGET', seenx, 'len', 'e0', 'e1', 'e2')
  if tonumber(x[1]) ~= len then
    for i = 1, 3 do redis.call('DEL', bitmaps[i]) end
    redis.call('DEL', seenx)
    redis.call('HSET', seenx, 'len', len)
    x = {len, false, false, false}
  end
  local epochs = {tonumber(x[2]), tonumber(x[3]), tonumber(x[4])}
  local s = e % 3
  if epochs[s + 1] ~= e then
    redis.call('DEL', bitmaps[s + 1])
    redis.call('HSET', seenx, 'e' .. s, e)
    redis.call('HDEL', seenx, 'j' .. s)
    epochs[s + 1] = e
  end
  return {
    e = e, bitmaps = bitmaps, seenx = seenx, since = (e - 2) * len, epochs = epochs,
    complete = epochs[(e - 1) % 3 + 1] == e - 1 and epochs[(e - 2) % 3 + 1] == e - 2,
  }
end

-- Polls that origin-queue failed to serve (shed, or Redis too slow) left no mark though
-- the visitor polled. `missed_ms` is the latest such moment a caller knows of (0: none);
-- the latest of all callers is kept in seenx. While the ring's window (from ring.since)
-- holds one, a missing bit proves nothing: the ring counts as incomplete and nobody is
-- dropped.
local function seen_hold_for_missed(ring, missed_ms)
  local known = tonumber(redis.call('HGET', ring.seenx, 'missed_ms')) or 0
  if missed_ms > known then
    redis.call('HSET', ring.seenx, 'missed_ms', missed_ms)
  else
    missed_ms = known
  end
  if missed_ms >= ring.since then ring.complete = false end
end

-- Marks the visitor with arrival number `seq` as polling now.
local function seen_mark(ring, seq)
  redis.call('SETBIT', ring.bitmaps[ring.e % 3 + 1], seq, 1)
end

-- Marks every arrival number in `seqs` (numbers or their decimal strings) as polling
-- now, with one read for all of them: most polls find their bit already set, and a
-- batch is then a single call.
local function seen_mark_all(ring, seqs)
  if #seqs == 0 then return end
  local bitmap = ring.bitmaps[ring.e % 3 + 1]
  local get = {}
  for i = 1, #seqs do
    get[#get + 1] = 'GET'; get[#get + 1] = 'u1'; get[#get + 1] = seqs[i]
  end
  local bits = redis.call('BITFIELD_RO', bitmap, unpack(get))
  for i = 1, #seqs do
    if bits[i] == 0 then redis.call('SETBIT', bitmap, seqs[i], 1) end
  end
end

-- True if the visitor with arrival number `seq` has not polled in the current epoch
-- nor the one before (half an abandon timeout at least): one who polls as told always
-- has, so such a visitor has most likely walked away and will be swept soon. Only
-- meaningful while the ring is complete.
local function seen_silent(ring, seq)
  local now_bit = redis.call('GETBIT', ring.bitmaps[ring.e % 3 + 1], seq)
  return now_bit == 0 and redis.call('GETBIT', ring.bitmaps[(ring.e - 1) % 3 + 1], seq) == 0
end

-- False only if the visitor with arrival number `seq` is known to have stopped polling.
local function seen_alive(ring, seq)
  if not ring.complete then return true end
  for i = 1, 3 do
    if redis.call('GETBIT', ring.bitmaps[i], seq) == 1 then return true end
  end
  return false
end


-- Counts `n` visitors who joined the line now (in the current epoch).
local function seen_count_joins(ring, n)
  if n > 0 then redis.call('HINCRBY', ring.seenx, 'j' .. (ring.e % 3), n) end
end

-- Visitors who joined in the current epoch and the two before it (the last 1-1.5
-- abandon timeouts): too recent for the sweep to have seen them silent, so nobody
-- knows yet which of them walked away. They are the back of the line.
local function seen_recent_joins(ring)
  local j = redis.call('HMGET', ring.seenx, 'j0', 'j1', 'j2')
  local total = 0
  for i = 1, 3 do
    local epoch = ring.epochs[i]
    if epoch and epoch >= ring.e - 2 then total = total + (tonumber(j[i]) or 0) end
  end
  return total
end
