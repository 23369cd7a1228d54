-- Prelude shared by every script that reads an event: its configuration (the cfg hash
-- that origin-queue's `configure` writes) and the rules read from it. Each rule is
-- decided here and nowhere else: whether the event takes visitors or admits them
-- (event_phase), how often a waiting visitor must poll (event_poll_cap_ms), and the
-- shared head of the join and status replies (event_batch_head).

-- The event's configuration, or nil when there is no such event.
local function event_load(cfg_key)
  local v = redis.call('HMGET', cfg_key, 'rate', 'burst', 'max_active', 'session_ms',
    'claim_ms', 'abandon_ms', 'opens_at_ms', 'closes_at_ms', 'paused', 'tokens',
    'tokens_at_ms', 'mode', 'prequeue_opens_at_ms', 'prequeue_last', 'drawn_ms',
    'ap_min', 'ap_max', 'ap_rate', 'pow_bits', 'not_before')
  if not v[1] then return nil end
  -- With the autopilot on (ap_max > 0), its rate within its bounds (until its first
  -- step: the configured rate within them).
  local ap_max = tonumber(v[17]) or 0
  if ap_max > 0 then
    local ap_min = tonumber(v[16]) or 0
    local rate = tonumber(v[18]) or tonumber(v[1])
    v[1] = tostring(math.max(ap_min, math.min(ap_max, rate)))
  end
  return {
    rate_text = v[1], rate = tonumber(v[1]), burst = tonumber(v[2]),
    max_active = tonumber(v[3]), session_ms = tonumber(v[4]), claim_ms = tonumber(v[5]),
    abandon_ms = tonumber(v[6]), opens_at_ms = tonumber(v[7]) or 0,
    closes_at_ms = tonumber(v[8]), paused = v[9] == '1',
    tokens = tonumber(v[10]), tokens_at_ms = tonumber(v[11]),
    mode = v[12] or 'fifo', prequeue_opens_at_ms = tonumber(v[13]) or 0,
    prequeue_last = tonumber(v[14]) or 0, drawn_ms = tonumber(v[15]) or 0,
    pow_bits = tonumber(v[19]) or 0, not_before = tonumber(v[20]) or 0,
  }
end

-- Where the event's pre-queue stands at `now` (ms):
--   ''         the event has no pre-queue: visitors who come before opens_at wait in
--              line first come, first served;
--   'not_open' before prequeue_opens_at: nobody joins yet;
--   'open'     from prequeue_opens_at to opens_at: whoever joins takes part in the
--              opening draw (the arrival numbers they get are only entry numbers);
--   'due'      opens_at has passed and the draw has not run: nobody is admitted;
--   'drawn'    the draw gave every entrant a place; later visitors queue behind.
local function event_prequeue(ev, now)
  if ev.prequeue_opens_at_ms == 0 then return '' end
  if ev.drawn_ms > 0 then return 'drawn' end
  if now < ev.prequeue_opens_at_ms then return 'not_open' end
  if now < ev.opens_at_ms then return 'open' end
  return 'due'
end

-- True if the waiting visitor with arrival number `seq` holds an entry in a draw that
-- has not run yet (their place is not known).
local function event_in_draw(ev, seq)
  return ev.prequeue_opens_at_ms > 0 and ev.drawn_ms == 0 and seq <= ev.prequeue_last
end

-- Where the event stands at `now` (ms):
--   'closed'    from closes_at on: nobody joins, nobody is admitted;
--   'scheduled' before opens_at: visitors join, nobody is admitted yet;
--   'paused'    an operator stopped admission: visitors join, nobody is admitted;
--   'open'      visitors join and the head of the line is admitted.
local function event_phase(ev, now)
  if now >= ev.closes_at_ms then return 'closed' end
  if now < ev.opens_at_ms then return 'scheduled' end
  if ev.paused then return 'paused' end
  return 'open'
end

-- The longest a waiting visitor may wait between polls: well inside the abandonment
-- timeout and the claim window.
local function event_poll_cap_ms(ev)
  return math.floor(math.min(ev.claim_ms, ev.abandon_ms) / 3)
end

-- The head of the join and status replies, what the ETA needs (built by reply_shaped,
-- reply.lua; read by name in store/reply.rs):
--   found (1), waiting, n1, n5, n15 (admitted in the last 1/5/15 minutes), rate,
--   poll_cap_ms, started_ms (first admission, 0: none yet), opens_at_ms, paused (1/0),
--   silent (in line but silent for an epoch or more, at the last full sweep pass),
--   binding (what limits admission now: 'rate', 'slots', 'line', 'none'; '' before the
--   first admission step), max_active, session_ms, slot_ends (when places free while
--   sessions bind: "free now,ending in each tenth of a session", else ''),
--   recent_joins (too recent to be seen silent: seen_recent_joins), mode
--   (fifo|random|passthrough|reject), prequeue (event_prequeue), pow_bits (the proof of
--   work a join must show, 0: none), not_before (the cut, unix seconds; 0: none).
local BATCH_HEAD = {'found', 'waiting', 'n1', 'n5', 'n15', 'rate', 'poll_cap_ms',
  'started_ms', 'opens_at_ms', 'paused', 'silent', 'binding', 'max_active', 'session_ms',
  'slot_ends', 'recent_joins', 'mode', 'prequeue', 'pow_bits', 'not_before'}
local function event_batch_head(ev, stats_key, waiting, recent_joins, now)
  local r = redis.call('HMGET', stats_key, 'n1', 'n5', 'n15', 'started_ms', 'silent', 'binding',
    'slot_ends')
  return reply_shaped(BATCH_HEAD, {found = 1, waiting = waiting, n1 = tonumber(r[1]) or 0,
    n5 = tonumber(r[2]) or 0, n15 = tonumber(r[3]) or 0, rate = ev.rate_text,
    poll_cap_ms = event_poll_cap_ms(ev), started_ms = tonumber(r[4]) or 0,
    opens_at_ms = ev.opens_at_ms, paused = ev.paused and 1 or 0,
    silent = tonumber(r[5]) or 0, binding = r[6] or '', max_active = ev.max_active,
    session_ms = ev.session_ms, slot_ends = r[7] or '', recent_joins = recent_joins,
    mode = ev.mode, prequeue = event_prequeue(ev, now), pow_bits = ev.pow_bits,
    not_before = ev.not_before})
end
