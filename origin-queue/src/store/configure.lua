-- Creates or replaces an event's configuration, with its lifetime, in one step (the
-- pause flag and the token bucket, kept in the same hash, are left as they are).
-- KEYS: 1 cfg. ARGV: 1 key ttl seconds, 2.. field, value, field, value, ...
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
