-- Prelude: the lifetime of an event's page template (the operator's HTML, key `page`).
-- The admission loop rewrites an event's cfg on every step, so the event lives as long
-- as origin-queue steps it; the template is written only by the operator, so a lifetime
-- counted from its last write (as for the other keys) could end while the event still
-- takes visitors. It lives until the event closes, plus the key lifetime every key has,
-- counted from now if the event has closed, and at most 400 days ahead; renewed whenever
-- the template or the event's configuration is written. A missing key is left missing.
local function page_expire(page_key, closes_at_ms, now_ms, ttl_s)
  local cap_ms = now_ms + 400 * 86400 * 1000
  local until_ms = math.min(math.max(now_ms, closes_at_ms), cap_ms) + ttl_s * 1000
  redis.call('PEXPIREAT', page_key, string.format('%d', until_ms))
end
