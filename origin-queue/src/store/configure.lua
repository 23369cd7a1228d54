-- Creates or replaces an event's configuration, with its lifetime, in one step (the
-- pause flag, the token bucket and the draw's state, kept in the same hash, are left as
-- they are). A new event also gets its draw seed here, before anybody can join: the
-- seed stays in cfg, its commitment goes to the public draw record; neither changes
-- while the event lives.
-- A new event starts with the built-in waiting-room page: a template left over from an
-- expired event of the same id is removed; an existing event's template lives on until
-- the (new) closing (page_expiry.lua).
-- KEYS: 1 cfg, 2 draw, 3 page. ARGV: 1 key ttl seconds, 2 a fresh seed, 3 its commitment,
-- 4 now ms, 5.. field, value, field, value, ...
if redis.call('HSETNX', KEYS[1], 'draw_secret', ARGV[2]) == 1 then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'commitment', ARGV[3], 'committed_at_ms', ARGV[4])
  redis.call('DEL', KEYS[3])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
local ttl = tonumber(ARGV[1])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
page_expire(KEYS[3], tonumber(redis.call('HGET', KEYS[1], 'closes_at_ms')) or 0,
  tonumber(ARGV[4]), ttl)
return 1
