-- The backend ended a visitor's session: free its place now. KEYS: 1 cfg, 2 active,
-- 3 stats. ARGV: 1 visitor, 2 the pass's issue time (ms), 3 key ttl seconds.
-- Returns 1 if the session was active and is now ended, 0 if there was nothing to end
-- (ended already: a repeated report is a no-op; never claimed; or a pass of an earlier
-- session of the same visitor, issued before this session began).
local v = ARGV[1]
local ends = tonumber(redis.call('ZSCORE', KEYS[2], v))
if not ends then return 0 end
local session_ms = tonumber(redis.call('HGET', KEYS[1], 'session_ms')) or 0
-- Passes are minted only while their session is active: one issued (to the second)
-- before this session began belongs to an earlier one.
if tonumber(ARGV[2]) + 1000 < ends - session_ms then return 0 end
redis.call('ZREM', KEYS[2], v)
redis.call('HINCRBY', KEYS[3], 'ended_backend_total', 1)
local ttl = tonumber(ARGV[3])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
return 1
