// The seed's sale scenario: visitors join, poll status (every 5 s by default, or as the
// queue advises when shorter), and go to the protected page once admitted.
//
// Smoke (what `make test` runs against `make up`'s stack):
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e PROFILE=smoke k6/sale.js
// Full size against a real cluster (see README "Load testing"):
//   k6 run -e BASE_URL=https://shop.example -e PROFILE=sale -e VISITORS=300000 k6/sale.js
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const EVENT = __ENV.EVENT || 'demo';
const PROTECTED = __ENV.PROTECTED_PATH || '/reserve';
const PROFILE = __ENV.PROFILE || 'smoke';
const POLL_SECONDS = Number(__ENV.POLL_SECONDS || (PROFILE === 'smoke' ? 1 : 5));
const MAX_WAIT_SECONDS = Number(__ENV.MAX_WAIT_SECONDS || (PROFILE === 'smoke' ? 120 : 3600));
const VISITORS = Number(__ENV.VISITORS || (PROFILE === 'smoke' ? 30 : 300000));

const admitted = new Counter('visitors_admitted');
const entered = new Counter('visitors_entered');
const gaveUp = new Counter('visitors_gave_up');
const wait = new Trend('wait_seconds');

const scenarios = {
  smoke: { executor: 'shared-iterations', vus: 15, iterations: VISITORS, maxDuration: '3m' },
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
  },
};

function retryAfter(r) {
  const s = parseInt(r.headers['Retry-After'] || '', 10);
  return Number.isFinite(s) && s > 0 ? s : 5;
}

export default function () {
  // A new visitor every iteration.
  http.cookieJar().clear(BASE);
  const started = Date.now();
  let r = http.post(`${BASE}/v1/events/${EVENT}/join`, null, { tags: { kind: 'join' }, responseCallback: http.expectedStatuses(200, 429, 503) });
  while (r.status === 429 || r.status === 503) {
    sleep(retryAfter(r));
    r = http.post(`${BASE}/v1/events/${EVENT}/join`, null, { tags: { kind: 'join' }, responseCallback: http.expectedStatuses(200, 429, 503) });
  }
  if (!check(r, { 'joined': (x) => x.status === 200 })) return;
  let body = r.json();
  while (body.status === 'waiting') {
    if ((Date.now() - started) / 1000 > MAX_WAIT_SECONDS) { gaveUp.add(1); return; }
    sleep(Math.min(POLL_SECONDS, (body.poll_after_ms || 5000) / 1000));
    r = http.get(`${BASE}/v1/events/${EVENT}/status`, { tags: { kind: 'status' }, responseCallback: http.expectedStatuses(200, 429, 503) });
    if (r.status === 429 || r.status === 503) { sleep(retryAfter(r)); continue; }
    if (!check(r, { 'status ok': (x) => x.status === 200 })) return;
    body = r.json();
  }
  if (!check(body, { 'admitted': (b) => b.status === 'admitted' })) return;
  admitted.add(1);
  wait.add((Date.now() - started) / 1000);
  r = http.get(`${BASE}${PROTECTED}`, { tags: { kind: 'protected' }, headers: { accept: 'application/json' } });
  if (check(r, { 'entered the protected page': (x) => x.status === 200 })) entered.add(1);
}
