// The seed's sale scenario: visitors join, poll status (every 5 s by default, or as the
// queue advises when shorter), and go to the protected page once admitted.
//
// Smoke (what `make test` runs against `make up`'s stack):
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e PROFILE=smoke k6/sale.js
// A sale on your machine, against `make up` (3,000 visitors arriving at 40/s for 75 s,
// the event set to admit 25/s through origin-queue's own port: the line grows to about
// 1,100, then drains). The visitors come from 241
// loopback addresses, as a crowd comes from many: from one address the edge's
// per-client limit (50/s) would answer most of them 429, as it should.
//   k6 run --local-ips 127.0.0.10-127.0.0.250 -e PROFILE=local \
//          -e ADMIN_TOKEN=$(cat .local/admin-token) k6/sale.js
// Full size against a real cluster (see docs/testing.md "Load testing"):
//   k6 run -e BASE_URL=https://shop.example -e PROFILE=sale -e VISITORS=300000 k6/sale.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import { openEventAtRate } from './admin.js';
import { Counter, Rate, Trend } from 'k6/metrics';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const EVENT = __ENV.EVENT || 'demo';
const PROTECTED = __ENV.PROTECTED_PATH || '/reserve';
const PROFILE = __ENV.PROFILE || 'smoke';
const POLL_SECONDS = Number(__ENV.POLL_SECONDS || (PROFILE === 'smoke' ? 1 : 5));
const MAX_WAIT_SECONDS = Number(__ENV.MAX_WAIT_SECONDS || ({ smoke: 120, local: 600 }[PROFILE] || 3600));
const DEFAULT_VISITORS = { smoke: 30, local: 3000 };
const VISITORS = Number(__ENV.VISITORS || DEFAULT_VISITORS[PROFILE] || 300000);
// The local profile: arrivals per second, and the admission rate it sets for the event.
const ARRIVALS = Number(__ENV.ARRIVALS || 40);
const ADMIT_RATE = Number(__ENV.ADMIT_RATE || 25);
const ADMIN = __ENV.ADMIN_URL || 'http://127.0.0.1:8081';

const admitted = new Counter('visitors_admitted');
const entered = new Counter('visitors_entered');
const gaveUp = new Counter('visitors_gave_up');
const wait = new Trend('wait_seconds');
// The share of answers that were 429 or 503 (retried after Retry-After).
const limited = new Rate('limited_answers');

const scenarios = {
  smoke: { executor: 'shared-iterations', vus: 15, iterations: VISITORS, maxDuration: '3m' },
  // VISITORS arriving at ARRIVALS a second on one machine; those in line when the
  // arrivals end wait their turn (up to MAX_WAIT_SECONDS).
  local: {
    executor: 'constant-arrival-rate', rate: ARRIVALS, timeUnit: '1s',
    duration: `${Math.max(1, Math.ceil(VISITORS / ARRIVALS))}s`,
    gracefulStop: `${MAX_WAIT_SECONDS}s`,
    preAllocatedVUs: 1500, maxVUs: Number(__ENV.MAX_VUS || 5000),
  },
  // 300,000 visitors arriving over ~10 minutes (500/s), each polling every 5 s.
  sale: {
    executor: 'ramping-arrival-rate', startRate: 50, timeUnit: '1s',
    preAllocatedVUs: 2000, maxVUs: Number(__ENV.MAX_VUS || 50000),
    stages: [{ target: 500, duration: '1m' }, { target: 500, duration: `${Math.max(1, Math.round(VISITORS / 500 / 60) - 1)}m` }],
  },
};

export const options = {
  scenarios: { sale: scenarios[PROFILE] },
  thresholds: {
    // Fail-fast answers (429/503 with Retry-After) are part of the design and are
    // retried politely; anything else counts as a failure.
    'checks': ['rate>0.99'],
    'http_req_duration{kind:join}': ['p(95)<500'],
    'http_req_duration{kind:status}': ['p(95)<250'],
    'visitors_entered': ['count>0'],
    // On one's own machine, from many addresses, the edge's limits should not be what
    // visitors meet: under 1 % of answers 429 or 503.
    ...(PROFILE === 'local' ? { 'limited_answers': ['rate<0.01'] } : {}),
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

// The local profile sets the event to admit ADMIT_RATE a second (make up's demo event
// admits 2/s: a line of 3,000 would take 25 minutes).
export function setup() {
  if (PROFILE === 'local') openEventAtRate(ADMIN, EVENT, ADMIT_RATE);
}

function retryAfter(r) {
  const s = parseInt(r.headers['Retry-After'] || '', 10);
  return Number.isFinite(s) && s > 0 ? s : 5;
}

// Counts whether `r` was a fail-fast answer (429, 503), and returns it.
function counted(r) {
  limited.add(r.status === 429 || r.status === 503);
  return r;
}

export default function () {
  // A new visitor every iteration.
  http.cookieJar().clear(BASE);
  const started = Date.now();
  const join = () => counted(http.post(`${BASE}/v1/events/${EVENT}/join`, null, { tags: { kind: 'join' }, responseCallback: http.expectedStatuses(200, 429, 503) }));
  let r = join();
  while (r.status === 429 || r.status === 503) {
    sleep(retryAfter(r));
    r = join();
  }
  if (!check(r, { 'joined': (x) => x.status === 200 })) return;
  let body = r.json();
  while (body.status === 'waiting') {
    if ((Date.now() - started) / 1000 > MAX_WAIT_SECONDS) { gaveUp.add(1); return; }
    sleep(Math.min(POLL_SECONDS, (body.poll_after_ms || 5000) / 1000));
    r = counted(http.get(`${BASE}/v1/events/${EVENT}/status`, { tags: { kind: 'status' }, responseCallback: http.expectedStatuses(200, 429, 503) }));
    if (r.status === 429 || r.status === 503) { sleep(retryAfter(r)); continue; }
    if (!check(r, { 'status ok': (x) => x.status === 200 })) return;
    body = r.json();
  }
  if (!check(body, { 'admitted': (b) => b.status === 'admitted' })) return;
  admitted.add(1);
  wait.add((Date.now() - started) / 1000);
  r = counted(http.get(`${BASE}${PROTECTED}`, { tags: { kind: 'protected' }, headers: { accept: 'application/json' } }));
  if (check(r, { 'entered the protected page': (x) => x.status === 200 })) entered.add(1);
}
