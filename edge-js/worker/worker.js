// A Cloudflare Worker (or any workerd service) that puts the waiting room in front of
// an origin. Bindings (see ../README.md):
//   WR_EDGE_CONFIG   the edge configuration as JSON text, without `keys`
//   WR_EDGE_KEYS     secret: the key ring, {"active": "k1", "keys": {"k1": "<base64>"}}
//   WR_ORIGIN        where admitted and bypass traffic goes
//   WR_QUEUE_ORIGIN  origin-queue (join, status, the waiting-room page)
//   WR_CLIENT_ADDRESS_HEADER  a header the platform sets and overwrites with the client
//                    address (default cf-connecting-ip, which Cloudflare sets); "" for none
//   WR_RATE_LIMITER  optional: a Rate Limiting binding, put in front of the decision
import wasm from '../pkg/wr_edge_js_bg.wasm';
import { init, Edge, toResponse } from '../js/edge.js';

init(wasm);

/** One Edge per isolate and configuration. */
let edge = null;
let configured = null;

function edgeFor(env) {
  const text = `${env.WR_EDGE_CONFIG}\u0000${env.WR_EDGE_KEYS}`;
  if (configured !== text) {
    const config = JSON.parse(env.WR_EDGE_CONFIG);
    config.keys = JSON.parse(env.WR_EDGE_KEYS);
    edge = new Edge(config);
    configured = text;
  }
  return edge;
}

export default {
  async fetch(request, env) {
    let room;
    try {
      room = edgeFor(env);
    } catch (e) {
      // Fail closed, and say why in the log (never the keys: only the core's problems).
      console.error(String(e.message || e));
      return toResponse({
        status: 503,
        headers: [['content-type', 'application/json'], ['retry-after', '5']],
        body: '{"error":{"code":"EDGE_NOT_CONFIGURED","message":"The edge is not configured."}}',
      });
    }
    const header = env.WR_CLIENT_ADDRESS_HEADER ?? 'cf-connecting-ip';
    const source = header === '' ? null : request.headers.get(header);
    if (env.WR_RATE_LIMITER) {
      const { success } = await env.WR_RATE_LIMITER.limit({ key: source ?? 'unknown' });
      if (!success) return toResponse(Edge.rateLimited(1));
    }
    return room.handle(request, { origin: env.WR_ORIGIN, queueOrigin: env.WR_QUEUE_ORIGIN, source });
  },
};
