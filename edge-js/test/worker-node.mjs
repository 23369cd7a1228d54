// The Worker's handling in Node: `node test/worker-node.mjs <keys.json>`. Exits non-zero
// with the failed check.
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { init } from '../js/edge.js';
import { handleWorkerRequest } from '../worker/handler.js';

init(readFileSync(new URL('../pkg/wr_edge_js_bg.wasm', import.meta.url)));
const keys = readFileSync(process.argv[2], 'utf8');
const env = {
  WR_EDGE_CONFIG: JSON.stringify({ events: [{ id: 'demo', protected_prefixes: ['/reserve'] }] }),
  WR_EDGE_KEYS: keys,
  WR_ORIGIN: 'http://127.0.0.1:9',
  WR_QUEUE_ORIGIN: 'http://127.0.0.1:9',
};

// The platform's limiter refuses: the edge's own 429, and it was asked with the client
// address from the platform's header.
const asked = [];
const refusing = { limit: async ({ key }) => { asked.push(key); return { success: false }; } };
const request = new Request('http://shop.test/reserve', { headers: { 'cf-connecting-ip': '203.0.113.7' } });
const limited = await handleWorkerRequest(request, { ...env, WR_RATE_LIMITER: refusing });
assert.equal(limited.status, 429);
assert.equal(limited.headers.get('retry-after'), '1');
assert.equal((await limited.json()).error.code, 'RATE_LIMITED');
assert.deepEqual(asked, ['203.0.113.7']);
console.log('ok: the rate limiter hook answers the edge\'s 429');

// The limiter lets it through: the core decides (no pass: 403 NOT_ADMITTED).
const allowing = { limit: async () => ({ success: true }) };
const denied = await handleWorkerRequest(new Request('http://shop.test/reserve'), { ...env, WR_RATE_LIMITER: allowing });
assert.equal(denied.status, 403);
assert.equal((await denied.json()).error.code, 'NOT_ADMITTED');
console.log('ok: past the limiter, the core decides');

// A broken key ring: 503 EDGE_NOT_CONFIGURED, and the log never shows the binding's text.
const logged = [];
const error = console.error;
console.error = (line) => logged.push(String(line));
const broken = await handleWorkerRequest(new Request('http://shop.test/reserve'), { ...env, WR_EDGE_KEYS: '{"s3cr3t' });
console.error = error;
assert.equal(broken.status, 503);
assert.equal((await broken.json()).error.code, 'EDGE_NOT_CONFIGURED');
assert.equal(logged.length, 1);
assert.ok(!logged[0].includes('s3cr3t'), logged[0]);
console.log('ok: a broken binding fails closed without logging it');
