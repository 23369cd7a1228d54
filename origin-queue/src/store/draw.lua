-- The opening draw: every entrant of the pre-queue gets a place, in a uniformly random
-- order anyone can recompute from what is published. The work is done in bounded
-- chunks, one per call (a 300,000-entrant draw in one script would block the shard for
-- seconds, long enough for Redis Cluster to fail the master over): first every
-- entrant's sort key goes into the order set `drawn`, then the entrants take places
-- 1, 2, ... in that order. Each chunk is atomic and moves a cursor kept with the data it
-- wrote (same slot, same script), so any number of origin-queue instances may call it,
-- a crash or a failover between chunks resumes from whatever the surviving node holds,
-- and the draw completes exactly once. Nobody is admitted (nor swept as abandoned)
-- until it has: event_prequeue stays 'due', every entrant stays 'in the draw'.
--
-- The procedure (published with the seed, docs/draw.md): for each entrant id v (the
-- members of the line with an entry number up to prequeue_last), key(v) =
-- lowercase hex SHA-1 of (seed .. ':' .. v); places 1, 2, ... go in ascending byte
-- order of key(v) .. v. SHA-1 is the hash Redis's Lua offers; the seed is 32 random
-- bytes (64 hex digits) committed as its SHA-256 before any visitor joined.
--
-- KEYS: 1 cfg, 2 q, 3 seenx, 4-6 seen0..2, 7 draw (the public record and the cursors),
--       8 drawn (the order: member key(v) .. v, score 0), 9 stats
-- ARGV: 1 now_ms, 2 key ttl seconds, 3 most entrants one call handles
-- Returns {0} when there is no such event, else DRAW_REPLY (by name, read in draw.rs):
-- state is what happened: 'drawing' (a chunk done, call again; entrants: keyed or placed
-- so far), 'drawn' (this call finished the draw; entrants: all of them), 'done' (drawn
-- before; entrants: all of them), 'not_due' (not time yet, or no pre-queue; 0).
local DRAW_REPLY = {'found', 'state', 'entrants'}
local function drew(state, entrants)
  return reply_shaped(DRAW_REPLY, {found = 1, state = state, entrants = entrants})
end
local ev = event_load(KEYS[1])
if not ev then return {0} end
local now, ttl, chunk = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = event_prequeue(ev, now)
if state == 'drawn' then
  return drew('done', tonumber(redis.call('HGET', KEYS[7], 'entrants')) or 0)
end
if state ~= 'due' then return drew('not_due', 0) end
local seed = redis.call('HGET', KEYS[1], 'draw_secret')
if not seed then return redis.error_reply('the event has no committed draw seed') end
for i = 1, 9 do redis.call('EXPIRE', KEYS[i], ttl) end
local c = redis.call('HMGET', KEYS[7], 'keyed_to', 'placed')
local keyed_to = tonumber(c[1]) or 0
local last = ev.prequeue_last

-- 1. Sort keys, by entry number: the entrants after the cursor.
if not c[1] then
  redis.call('DEL', KEYS[8])
  redis.call('HSET', KEYS[7], 'started_at_ms', now, 'keyed_to', 0)
end
if keyed_to < last then
  local batch = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. keyed_to, last, 'WITHSCORES',
    'LIMIT', 0, chunk)
  local args = {}
  for i = 1, #batch, 2 do
    args[#args + 1] = 0
    args[#args + 1] = redis.sha1hex(seed .. ':' .. batch[i]) .. batch[i]
    if #args >= 1000 then
      redis.call('ZADD', KEYS[8], unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('ZADD', KEYS[8], unpack(args)) end
  keyed_to = (#batch < 2 * chunk) and last or tonumber(batch[#batch])
  redis.call('HSET', KEYS[7], 'keyed_to', keyed_to)
  return drew('drawing', redis.call('ZCARD', KEYS[8]))
end

-- 2. Places in the drawn order become the entrants' arrival numbers: positions, the
-- ETA and admission then work as after ordinary joins. Later visitors hold higher
-- numbers. (An entrant who left meanwhile keeps a place in the published order and
-- none in line: XX.)
local placed = tonumber(c[2]) or 0
local order = redis.call('ZRANGE', KEYS[8], placed, placed + chunk - 1)
local args = {}
for i = 1, #order do
  args[#args + 1] = placed + i
  args[#args + 1] = string.sub(order[i], 41)
  if #args >= 1000 then
    redis.call('ZADD', KEYS[2], 'XX', unpack(args))
    args = {}
  end
end
if #args > 0 then redis.call('ZADD', KEYS[2], 'XX', unpack(args)) end
placed = placed + #order
redis.call('HSET', KEYS[7], 'placed', placed)
if #order == chunk then return drew('drawing', placed) end

-- 3. Done. The poll ring's bits are indexed by arrival number, which just changed:
-- start it over (while it refills, nobody is dropped as abandoned).
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HSET', KEYS[9], 'silent', 0)
redis.call('HSET', KEYS[1], 'drawn_ms', now)
redis.call('HSET', KEYS[7], 'seed', seed, 'drawn_at_ms', now, 'entrants', placed,
  'cut_entry', last)
redis.call('HINCRBY', KEYS[7], 'draws', 1)
return drew('drawn', placed)
