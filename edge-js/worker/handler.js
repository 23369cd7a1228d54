// The Worker's request handling, apart from how the core is loaded (worker.js), so that
// it runs in any runtime that has loaded the core (the tests drive it in Node too).
import { Edge, toResponse } from '../js/edge.js';

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

/** The Worker's `fetch`: see worker.js for the bindings. `ctx.waitUntil` keeps the
 * isolate alive for a session-end report sent after the response. */
export async function handleWorkerRequest(request, env, ctx) {
  let room;
  try {
    room = edgeFor(env);
  } catch (e) {
    // Fail closed, and say why in the log: the core's problems or the JSON parser's
    // position, never the text of a binding (the keys are one).
    console.error(`wr-edge: ${e instanceof SyntaxError ? 'a binding is not valid JSON' : e.message}`);
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
  return room.handle(request, {
    origin: env.WR_ORIGIN,
    queueOrigin: env.WR_QUEUE_ORIGIN,
    source,
    waitUntil: (promise) => ctx?.waitUntil(promise),
    onReport: (result) => {
      if (result !== 'reported') console.warn('wr-edge: a session-end report failed');
    },
  });
}
