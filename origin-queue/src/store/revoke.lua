-- The operator revokes every pass of an event issued before a cut: the edges refuse
-- them (their configuration names the same cut), and here every admission made before
-- it ends, so the places free and nobody re-mints a pass for a revoked session.
-- KEYS: 1 cfg, 2 granted (visitor -> claim deadline ms), 3 active (visitor -> session
--       end ms), 4 barred, 5 stats
-- ARGV: 1 the cut (unix seconds), 2 'requeue' (the revoked may join again, at the back)
--       or 'bar' (they may not), 3 now ms, 4 key ttl seconds, 5 how long a bar lasts
--       (seconds)
-- Returns {0} when there is no such event, else REVOKE_REPLY (by name, read in
-- revoke.rs): later_cut is the cut in force when a later one is already (a cut never
-- moves back: the edges keep the later one; nothing is revoked then), else 0 with the
-- sessions and grants revoked.
local REVOKE_REPLY = {'found', 'later_cut', 'sessions', 'grants'}
local cut = tonumber(ARGV[1])
local cfg = redis.call('HMGET', KEYS[1], 'session_ms', 'claim_ms', 'not_before')
if not cfg[1] then return {0} end
local in_force = tonumber(cfg[3]) or 0
if in_force > cut then
  return reply_shaped(REVOKE_REPLY, {found = 1, later_cut = in_force, sessions = 0, grants = 0})
end
redis.call('HSET', KEYS[1], 'not_before', cut)
-- Admitted before the cut: a session that began, or a grant made, before it.
local function revoke(key, length_ms)
  local before = '(' .. (cut * 1000 + length_ms)
  local who = redis.call('ZRANGEBYSCORE', key, '-inf', before)
  if #who == 0 then return 0 end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', before)
  if ARGV[2] == 'bar' then
    local now = ARGV[3]
    for i = 1, #who, 500 do
      local args = {}
      for j = i, math.min(i + 499, #who) do
        args[#args + 1] = now
        args[#args + 1] = who[j]
      end
      redis.call('ZADD', KEYS[4], unpack(args))
    end
    redis.call('EXPIRE', KEYS[4], tonumber(ARGV[5]))
  end
  return #who
end
local sessions = revoke(KEYS[3], tonumber(cfg[1]))
local grants = revoke(KEYS[2], tonumber(cfg[2]))
redis.call('HINCRBY', KEYS[5], 'revoked_total', sessions + grants)
local ttl = tonumber(ARGV[4])
for _, i in ipairs({1, 2, 3, 5}) do redis.call('EXPIRE', KEYS[i], ttl) end
return reply_shaped(REVOKE_REPLY, {found = 1, later_cut = 0, sessions = sessions,
  grants = grants})
