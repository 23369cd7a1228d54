-- One admission step for an event: sweep (bounded), then admit under the token bucket
-- and the active-session cap, as the event's queueing mode says:
--   fifo        the head of the line, strictly in order (only ever the lowest arrival
--               numbers);
--   random      each step draws uniformly among everyone waiting;
--   passthrough everyone is let in at once (join grants directly; anyone still in line
--               is moved to granted, a batch per step), while the bucket and the cap run
--               a dry run on the dryq line, recording the waits there would have been;
--   reject      nobody is admitted (and join queues nobody).
-- KEYS: 1 cfg, 2 q, 3 seenx, 4-6 seen0..2, 7 granted, 8 active, 9 stats, 10 dryq
--       (visitor -> join ms), 11 dryactive (visitor -> would-be session end ms)
-- ARGV: 1 now_ms, 2 max batch, 3 sweep limit, 4 key ttl seconds, 5 latest poll the
-- caller failed to serve (ms, 0: none; see seen_hold_for_missed)
-- Returns ADMIT_REPLY (reply_shaped, read by name in admit.rs): admitted (-1 when the
-- event is gone, -2 when the opening draw is due (draw.lua): nobody is admitted before
-- it ran), lapsed, abandoned, ended, waiting, granted, active, the dry run's waiting,
-- admitted and their waits summed (ms), mode, prequeue (event_prequeue), phase
-- (event_phase), the rate in force, max_active.
local ADMIT_REPLY = {'admitted', 'lapsed', 'abandoned', 'ended', 'waiting', 'granted',
  'active', 'dry_waiting', 'dry_admitted', 'dry_wait_ms', 'mode', 'prequeue', 'phase',
  'rate', 'max_active'}
local now, max_batch, sweep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ev = event_load(KEYS[1])
-- A step that admits nobody: the event is gone (-1) or its draw is due (-2).
local function admit_none(admitted, waiting, mode, prequeue, phase, rate, max_active)
  return reply_shaped(ADMIT_REPLY, {admitted = admitted, lapsed = 0, abandoned = 0,
    ended = 0, waiting = waiting, granted = 0, active = 0, dry_waiting = 0,
    dry_admitted = 0, dry_wait_ms = 0, mode = mode, prequeue = prequeue, phase = phase,
    rate = rate, max_active = max_active})
end
if not ev then return admit_none(-1, 0, '', '', '', '0', 0) end
if event_prequeue(ev, now) == 'due' then
  return admit_none(-2, redis.call('ZCARD', KEYS[2]), ev.mode, 'due', event_phase(ev, now),
    ev.rate_text, ev.max_active)
end
local rate, burst, max_active = ev.rate, ev.burst, ev.max_active

-- Grants never claimed and sessions over: bounded by the sweep limit per step.
local function sweep_set(set, before)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[set], '-inf', before, 'LIMIT', 0, sweep)
  for _, v in ipairs(gone) do redis.call('ZREM', KEYS[set], v) end
  return #gone
end
local lapsed = sweep_set(7, '(' .. now)
local ended = sweep_set(8, '(' .. now)

-- Waiting visitors who stopped polling: the next `sweep` of the line from a cursor
-- that walks it from head to tail and starts over, so each step is bounded work.
local ring = seen_ring(KEYS[3], {KEYS[4], KEYS[5], KEYS[6]}, ev.abandon_ms, now)
seen_hold_for_missed(ring, tonumber(ARGV[5]) or 0)
-- The same walk counts those silent for an epoch or more (walked away, not yet
-- swept): at the end of each pass over the line their number goes to stats 'silent',
-- for the wait estimate.
local abandoned = 0
if ring.complete then
  local cursor = tonumber(redis.call('HGET', KEYS[3], 'cursor')) or 0
  local batch = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. cursor, '+inf', 'WITHSCORES', 'LIMIT', 0, sweep)
  local silent = 0
  for i = 1, #batch, 2 do
    cursor = tonumber(batch[i + 1])
    if not seen_alive(ring, cursor) then
      redis.call('ZREM', KEYS[2], batch[i])
      abandoned = abandoned + 1
    elseif seen_silent(ring, cursor) then
      silent = silent + 1
    end
  end
  local counted = redis.call('HINCRBY', KEYS[3], 'silent_acc', silent)
  if #batch < 2 * sweep then
    cursor = 0
    redis.call('HSET', KEYS[9], 'silent', counted)
    redis.call('HSET', KEYS[3], 'silent_acc', 0)
  end
  redis.call('HSET', KEYS[3], 'cursor', cursor)
end

-- Token bucket (tokens kept as a float in the cfg hash).
-- The bucket may hold more than `burst` when the time since the last step alone earns
-- more (rate x step interval, at most one second's worth, plus the fraction carried
-- over): otherwise a small burst would cap the admission rate at burst per step, and
-- fractions lost at every step would slow it down.
local tokens = ev.tokens or burst
local at = ev.tokens_at_ms or now
local cap = burst
if now > at then
  local earned = (now - at) * rate / 1000
  cap = math.max(burst, math.min(earned, rate) + 1)

  tokens = math.min(cap, tokens + earned)
end
local n = 0
local slot_ends = nil
-- What limits admission now, for the wait estimate: 'rate' (the token bucket), 'slots'
-- (max_active: only sessions ending free places), 'line' (fewer waiting than either
-- allows) or 'none' (not admitting: scheduled, paused or closed).
local binding = 'none'
if event_phase(ev, now) == 'open' then
  local slots = max_active - redis.call('ZCARD', KEYS[7]) - redis.call('ZCARD', KEYS[8])
  local want = math.max(0, math.min(math.floor(tokens), slots, max_batch))
  if redis.call('ZCARD', KEYS[2]) <= math.min(math.floor(tokens), slots) then
    binding = 'line'
  else
    binding = slots <= math.floor(tokens) and 'slots' or 'rate'
    -- When places free over the next session length, for the wait estimate (the
    -- bucket and the places take turns limiting a step while sessions end in waves):
    -- places free now (negative: that many sessions must end before one frees), then
    -- sessions ending in each tenth of a session length (grants, not yet claimed, hold
    -- their place for a whole session after their claim: the last tenth).
    local width = ev.session_ms / 10
    local ends = {slots}
    for i = 0, 9 do
      local count = redis.call('ZCOUNT', KEYS[8], '(' .. (now + i * width), now + (i + 1) * width)
      if i == 9 then count = count + redis.call('ZCARD', KEYS[7]) end
      ends[#ends + 1] = count
    end
    slot_ends = table.concat(ends, ',')
  end
  -- The head of the line, in order (random: a uniform draw among all waiting); one
  -- known to have stopped polling leaves instead of taking a grant (at most `sweep`
  -- of them per step). Passthrough lets the line in regardless of bucket and cap.
  if ev.mode == 'passthrough' then
    want = math.min(max_batch, redis.call('ZCARD', KEYS[2]))
    binding = 'none'
  elseif ev.mode == 'reject' then
    want, binding = 0, 'none'
  end
  local function pick(k)
    if ev.mode == 'random' then
      return redis.call('ZRANDMEMBER', KEYS[2], k, 'WITHSCORES')
    end
    return redis.call('ZRANGE', KEYS[2], 0, k - 1, 'WITHSCORES')
  end
  local skipped = 0
  while n < want and skipped < sweep do
    local heads = pick(want - n)
    if #heads == 0 then break end
    for i = 1, #heads, 2 do
      redis.call('ZREM', KEYS[2], heads[i])
      if seen_alive(ring, tonumber(heads[i + 1])) then
        redis.call('ZADD', KEYS[7], now + ev.claim_ms, heads[i])
        n = n + 1
      else
        skipped = skipped + 1
      end
    end
  end
  abandoned = abandoned + skipped
  if ev.mode ~= 'passthrough' then tokens = tokens - n end
else
  tokens = math.min(tokens, cap)
end

-- The dry run of passthrough: the bucket and the cap admit the head of dryq as they
-- would have admitted the line; each would-be session holds its place a whole session.
local dry_n, dry_wait_ms = 0, 0
if ev.mode == 'passthrough' and event_phase(ev, now) == 'open' then
  redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', now)
  local dry_slots = max_active - redis.call('ZCARD', KEYS[11])
  local want = math.max(0, math.min(math.floor(tokens), dry_slots, max_batch))
  if want > 0 then
    local heads = redis.call('ZRANGE', KEYS[10], 0, want - 1, 'WITHSCORES')
    local max_wait = tonumber(redis.call('HGET', KEYS[9], 'dry_wait_max_ms')) or 0
    for i = 1, #heads, 2 do
      local wait = now - tonumber(heads[i + 1])
      redis.call('ZREM', KEYS[10], heads[i])
      redis.call('ZADD', KEYS[11], now + ev.session_ms, heads[i])
      dry_n, dry_wait_ms = dry_n + 1, dry_wait_ms + wait
      if wait > max_wait then max_wait = wait end
    end
    tokens = tokens - dry_n
    redis.call('HINCRBY', KEYS[9], 'dry_admitted_total', dry_n)
    redis.call('HINCRBY', KEYS[9], 'dry_wait_ms_total', dry_wait_ms)
    redis.call('HSET', KEYS[9], 'dry_wait_max_ms', max_wait)
  end
  local dry_waiting = redis.call('ZCARD', KEYS[10])
  if dry_waiting > (tonumber(redis.call('HGET', KEYS[9], 'dry_waiting_max')) or 0) then
    redis.call('HSET', KEYS[9], 'dry_waiting_max', dry_waiting)
  end
elseif ev.mode ~= 'passthrough' then
  -- A dry run ends with passthrough (its figures stay in stats).
  redis.call('DEL', KEYS[10], KEYS[11])
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'tokens_at_ms', now)

-- Admissions per 10 s bucket over the last 15 minutes (90 buckets), for the ETA.
local bucket = math.floor(now / 10000)
local slot = bucket % 90
if redis.call('HGET', KEYS[9], 'e' .. slot) ~= tostring(bucket) then
  redis.call('HSET', KEYS[9], 'e' .. slot, bucket, 'c' .. slot, 0)
end
if n > 0 then redis.call('HINCRBY', KEYS[9], 'c' .. slot, n) end
-- Windows of 1, 5 and 15 minutes, kept ready for status calls.
local fields = {}
for i = 0, 89 do fields[#fields + 1] = 'e' .. i; fields[#fields + 1] = 'c' .. i end
local vals = redis.call('HMGET', KEYS[9], unpack(fields))
local n1, n5, n15 = 0, 0, 0
for i = 0, 89 do
  local epoch, count = tonumber(vals[2 * i + 1]), tonumber(vals[2 * i + 2]) or 0
  local age = epoch and (bucket - epoch) or 99
  if age >= 0 and age < 90 then
    n15 = n15 + count
    if age < 30 then n5 = n5 + count end
    if age < 6 then n1 = n1 + count end
  end
end
redis.call('HSET', KEYS[9], 'n1', n1, 'n5', n5, 'n15', n15, 'binding', binding,
  'slot_ends', slot_ends or '')
if n > 0 then redis.call('HSETNX', KEYS[9], 'started_ms', now) end
redis.call('HINCRBY', KEYS[9], 'admitted_total', n)
redis.call('HINCRBY', KEYS[9], 'abandoned_total', abandoned)
redis.call('HINCRBY', KEYS[9], 'lapsed_total', lapsed)
if ended > 0 then redis.call('HINCRBY', KEYS[9], 'ended_timeout_total', ended) end
local ttl = tonumber(ARGV[4])
for i = 1, 11 do redis.call('EXPIRE', KEYS[i], ttl) end
return reply_shaped(ADMIT_REPLY, {admitted = n, lapsed = lapsed, abandoned = abandoned,
  ended = ended, waiting = redis.call('ZCARD', KEYS[2]), granted = redis.call('ZCARD', KEYS[7]),
  active = redis.call('ZCARD', KEYS[8]), dry_waiting = redis.call('ZCARD', KEYS[10]),
  dry_admitted = dry_n, dry_wait_ms = dry_wait_ms, mode = ev.mode,
  prequeue = event_prequeue(ev, now), phase = event_phase(ev, now), rate = ev.rate_text,
  max_active = ev.max_active})
