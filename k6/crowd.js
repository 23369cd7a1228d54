// A crowd against the local stack (`make up`): VUS visitors at once, each joining the
// line, polling status as the queue advises (`poll_after_ms`), opening the protected
// page once admitted, and starting over as a new visitor, for DURATION. The event is
// set to admit RATE visitors a second through origin-queue's own port (the admin API
// is not reachable through the edge).
//
// Run it from many loopback addresses (k6's --local-ips), as a crowd comes: from one
// address, everybody would share the edge's per-client limit and the run would only
// measure that.
//
//   k6 run --local-ips 127.0.0.10-127.0.0.250 -e ADMIN_TOKEN=$(cat .local/admin-token) k6/crowd.js
//
// Errors are answers other than 2xx, 3xx and 429 (a 429 is the edge's per-client or
// per-visitor limit doing its job, and is retried after Retry-After). Thresholds: errors
// under 0.1 %, status p99 under 100 ms.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { openEventAtRate } from './admin.js';
import { Counter, Rate, Trend } from 'k6/metrics';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const ADMIN = __ENV.ADMIN_URL || 'http://127.0.0.1:8081';
const EVENT = __ENV.EVENT || 'demo';
const PROTECTED = __ENV.PROTECTED_PATH || '/reserve';
const RATE = Number(__ENV.RATE || 75);
const VUS = Number(__ENV.VUS || 2000);
const DURATION = __ENV.DURATION || '150s';

const errors = new Rate('errors');
const limited = new Counter('answers_429');
const entered = new Counter('visitors_entered');
const wait = new Trend('wait_seconds');

export const options = {
  scenarios: {
    crowd: { executor: 'constant-vus', vus: VUS, duration: DURATION, gracefulStop: '10s' },
  },
  thresholds: {
    'errors': ['rate<0.001'],
    'http_req_duration{kind:status}': ['p(99)<100'],
    // Reported, not judged (the surge of joins at the start is the heaviest moment).
    'http_req_duration{kind:join}': ['p(99)<10000'],
    'http_req_duration{kind:protected}': ['p(99)<10000'],
    'visitors_entered': ['count>0'],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  openEventAtRate(ADMIN, EVENT, RATE);
}

function retryAfter(r) {
  const s = parseInt(r.headers['Retry-After'] || '', 10);
  return Number.isFinite(s) && s > 0 ? s : 1;
}

// One request; 2xx and 3xx are fine, 429 is retried politely, anything else is an error.
function send(kind, fn) {
  for (;;) {
    const r = fn({ tags: { kind }, responseCallback: http.expectedStatuses({ min: 200, max: 399 }, 429) });
    if (r.status === 429) {
      limited.add(1);
      sleep(retryAfter(r));
      continue;
    }
    const ok = r.status >= 200 && r.status < 400;
    errors.add(!ok, { kind });
    return ok ? r : null;
  }
}

export default function () {
  http.cookieJar().clear(BASE);
  const started = Date.now();
  let r = send('join', (p) => http.post(`${BASE}/v1/events/${EVENT}/join`, null, p));
  if (!r) { sleep(1); return; }
  let body = r.json();
  while (body.status === 'waiting') {
    sleep((body.poll_after_ms || 5000) / 1000);
    r = send('status', (p) => http.get(`${BASE}/v1/events/${EVENT}/status`, p));
    if (!r) { sleep(1); return; }
    body = r.json();
  }
  if (!check(body, { 'admitted': (b) => b.status === 'admitted' })) return;
  wait.add((Date.now() - started) / 1000);
  const params = { headers: { accept: 'application/json' } };
  r = send('protected', (p) => http.get(`${BASE}${PROTECTED}`, Object.assign(p, params)));
  if (r && check(r, { 'entered the protected page': (x) => x.status === 200 })) entered.add(1);
}
