-- Creates or replaces an event's configuration, with its lifetime, in one step (the
-- pause flag, the token bucket and the draw's state, kept in the same hash, are left as
-- they are). A new event also gets its draw seed here, before anybody can join: the
-- seed stays in cfg, its commitment goes to the public draw record; neither changes
-- while the event lives.
-- KEYS: 1 cfg, 2 draw. ARGV: 1 key ttl seconds, 2 a fresh seed, 3 its commitment,
-- 4 now ms, 5.. field, value, field, value, ...
if redis.call('HSETNX', KEYS[1], 'draw_secret', ARGV[2]) == 1 then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'commitment', ARGV[3], 'committed_at_ms', ARGV[4])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
local ttl = tonumber(ARGV[1])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return 1
