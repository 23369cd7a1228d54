-- Stores an event's page template (the operator's HTML, validated by origin-queue), if
-- the event exists, with its lifetime (page_expiry.lua).
-- KEYS: 1 cfg, 2 page. ARGV: 1 the template, 2 now ms, 3 key ttl seconds.
-- Returns 1, or 0 when there is no such event.
local closes = redis.call('HGET', KEYS[1], 'closes_at_ms')
if not closes then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
page_expire(KEYS[2], tonumber(closes) or 0, tonumber(ARGV[2]), tonumber(ARGV[3]))
return 1
