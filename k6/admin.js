// Setting up a load test's event through origin-queue's own port (the admin API is not
// reachable through the edge): shared by the k6 scenarios that run against `make up`.
import http from 'k6/http';

// Opens EVENT now for a day, admitting `rate` visitors a second (burst `rate`), with
// room for everyone at once. Throws, naming the cause, if the token is missing or the
// admin API refuses.
export function openEventAtRate(adminUrl, event, rate) {
  if (!__ENV.ADMIN_TOKEN) throw new Error('set ADMIN_TOKEN (make up keeps it in .local/admin-token)');
  const now = Math.floor(Date.now() / 1000);
  const config = {
    rate_per_second: rate, burst: rate, max_active: 1000000, session_seconds: 600,
    claim_seconds: 30, abandon_seconds: 60, opens_at: now - 1, closes_at: now + 86400,
  };
  const r = http.put(`${adminUrl}/v1/admin/events/${event}`, JSON.stringify(config), {
    headers: { authorization: `Bearer ${__ENV.ADMIN_TOKEN}`, 'content-type': 'application/json' },
  });
  if (r.status !== 200) throw new Error(`configuring ${event}: ${r.status} ${r.body}`);
}
