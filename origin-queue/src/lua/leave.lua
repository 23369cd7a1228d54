-- Give up a place (or an admission). KEYS: 1 q, 2 seen, 3 vis, 4 granted, 5 active. ARGV: 1 visitor
local v = ARGV[1]
local removed = redis.call('ZREM', KEYS[1], v) + redis.call('ZREM', KEYS[4], v) + redis.call('ZREM', KEYS[5], v)
redis.call('ZREM', KEYS[2], v)
redis.call('HDEL', KEYS[3], v)
return removed
