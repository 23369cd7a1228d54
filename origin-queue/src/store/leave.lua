-- Give up a place (or an admission). KEYS: 1 q, 2 granted, 3 active, 4 stats.
-- ARGV: 1 visitor. Returns LEAVE_REPLY (by name, read in leave.rs): held, the places
-- held (0-3: in line, granted, in session); ended_session, 1 if an active session ended.
-- (The visitor's bits in the seen bitmaps are left to rotate out: they name nobody.)
local v = ARGV[1]
local session = redis.call('ZREM', KEYS[3], v)
if session == 1 then redis.call('HINCRBY', KEYS[4], 'ended_left_total', 1) end
local LEAVE_REPLY = {'held', 'ended_session'}
return reply_shaped(LEAVE_REPLY, {
  held = redis.call('ZREM', KEYS[1], v) + redis.call('ZREM', KEYS[2], v) + session,
  ended_session = session})
