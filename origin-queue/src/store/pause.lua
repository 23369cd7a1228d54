-- Pauses (ARGV[1] = '1') or resumes ('0') admission of an event, if it exists.
-- KEYS: 1 cfg. Returns 1, or 0 when there is no such event.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'paused', ARGV[1])
return 1
