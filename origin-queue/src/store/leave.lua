-- Give up a place (or an admission). KEYS: 1 q, 2 granted, 3 active. ARGV: 1 visitor
-- (The visitor's bits in the seen bitmaps are left to rotate out: they name nobody.)
local v = ARGV[1]
return redis.call('ZREM', KEYS[1], v) + redis.call('ZREM', KEYS[2], v) + redis.call('ZREM', KEYS[3], v)
