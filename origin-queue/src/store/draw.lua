-- The opening draw: every entrant of the pre-queue gets a place, in a uniformly random
-- order anyone can recompute from what is published. Atomic (one script, one slot) and
-- idempotent: it runs only while the draw is due (event_prequeue), and marks the
-- event drawn in the same step, so however many origin-queue instances call it, and
-- however often, exactly one draw happens. Being a pure function of the committed seed
-- and the entrants, a draw lost with a failed master before it reached a replica is
-- redone by the next call on the new master with the same result for the same entrants.
--
-- The procedure (published with the seed, docs/draw.md): for each entrant id v (the
-- members of the line with an entry number up to prequeue_last), key(v) =
-- lowercase hex SHA-1 of (seed .. ':' .. v); places 1, 2, ... go in ascending byte
-- order of key(v) .. v. SHA-1 is the hash Redis's Lua offers; the seed is 32 random
-- bytes (64 hex digits) committed as its SHA-256 before any visitor joined.
--
-- KEYS: 1 cfg, 2 q, 3 seenx, 4-6 seen0..2, 7 draw (the public record), 8 drawn (the
--       order: member key(v) .. v, score 0), 9 stats
-- ARGV: 1 now_ms, 2 key ttl seconds
-- Returns {0} when there is no such event, else {1, what happened ('drawn': this call
-- drew; 'done': drawn before; 'not_due': not time yet, or no pre-queue), entrants}
local ev = event_load(KEYS[1])
if not ev then return {0} end
local now = tonumber(ARGV[1])
local state = event_prequeue(ev, now)
if state == 'drawn' then
  return {1, 'done', tonumber(redis.call('HGET', KEYS[7], 'entrants')) or 0}
end
if state ~= 'due' then return {1, 'not_due', 0} end
local seed = redis.call('HGET', KEYS[1], 'draw_secret')
if not seed then return redis.error_reply('the event has no committed draw seed') end

local chunk = 500
redis.call('DEL', KEYS[8])
local entrants = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ev.prequeue_last)
for from = 1, #entrants, chunk do
  local args = {}
  for i = from, math.min(from + chunk - 1, #entrants) do
    local v = entrants[i]
    args[#args + 1] = 0
    args[#args + 1] = redis.sha1hex(seed .. ':' .. v) .. v
  end
  redis.call('ZADD', KEYS[8], unpack(args))
end
entrants = nil
-- Places in the drawn order become the entrants' arrival numbers: positions, the ETA
-- and admission then work as after ordinary joins. Later visitors hold higher numbers.
local total = redis.call('ZCARD', KEYS[8])
for from = 0, total - 1, chunk do
  local order = redis.call('ZRANGE', KEYS[8], from, from + chunk - 1)
  local args = {}
  for i = 1, #order do
    args[#args + 1] = from + i
    args[#args + 1] = string.sub(order[i], 41)
  end
  redis.call('ZADD', KEYS[2], 'XX', unpack(args))
end
-- The poll ring's bits are indexed by arrival number, which just changed: start it
-- over (while it refills, nobody is dropped as abandoned).
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('HSET', KEYS[9], 'silent', 0)
redis.call('HSET', KEYS[1], 'drawn_ms', now)
redis.call('HSET', KEYS[7], 'seed', seed, 'drawn_at_ms', now, 'entrants', total,
  'cut_entry', ev.prequeue_last)
redis.call('HINCRBY', KEYS[7], 'draws', 1)
local ttl = tonumber(ARGV[2])
for i = 1, 9 do redis.call('EXPIRE', KEYS[i], ttl) end
return {1, 'drawn', total}
