-- The backend ended a visitor's session: free its place now. KEYS: 1 cfg, 2 active,
-- 3 stats. ARGV: 1 visitor, 2 the pass's issue time (ms), 3 key ttl seconds.
-- Returns 1 if the session was active and is now ended, 0 if there was nothing to end
-- (ended already: a repeated report is a no-op; never claimed; or a pass of an earlier
-- session of the same visitor, issued before this session began), -1 if the pass was
-- issued before the event's cut (revoked: its session was ended by the revocation).
local v = ARGV[1]
local issued = tonumber(ARGV[2])
local cfg = redis.call('HMGET', KEYS[1], 'session_ms', 'not_before')
if issued < (tonumber(cfg[2]) or 0) * 1000 then return -1 end
local ends = tonumber(redis.call('ZSCORE', KEYS[2], v))
if not ends then return 0 end
local session_ms = tonumber(cfg[1]) or 0
-- Passes are minted only while their session is active: one issued (to the second)
-- before this session began belongs to an earlier one.
if issued + 1000 < ends - session_ms then return 0 end
redis.call('ZREM', KEYS[2], v)
redis.call('HINCRBY', KEYS[3], 'ended_backend_total', 1)
local ttl = tonumber(ARGV[3])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
return 1
