// A flood of new visitors joining, at a fixed arrival rate (open loop: k6 starts
// RATE joins a second whether or not earlier ones have been answered). Used by
// `make chaos` (scenario overload); counts what was served, shed and lost. Each
// join comes from a new visitor (no cookies kept).
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e RATE=4000 -e DURATION=20s k6/flood.js
import http from 'k6/http';
import { Counter } from 'k6/metrics';

const served = new Counter('flood_served');
const shed = new Counter('flood_shed');
const failed = new Counter('flood_failed');

export const options = {
  discardResponseBodies: true,
  scenarios: {
    flood: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 1000),
      timeUnit: '1s',
      duration: __ENV.DURATION || '20s',
      preAllocatedVUs: 200,
      maxVUs: 2000,
    },
  },
};

export default function () {
  const url = `${__ENV.BASE_URL}/v1/events/${__ENV.EVENT || 'demo'}/join`;
  // Every join is a new visitor: no ticket from an earlier iteration is sent.
  http.cookieJar().clear(url);
  const r = http.post(url, null, { timeout: '5s' });
  if (r.status === 200) served.add(1);
  else if (r.status === 429 || r.status === 503) shed.add(1);
  else failed.add(1);
}
