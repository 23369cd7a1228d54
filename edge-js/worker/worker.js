// A Cloudflare Worker (or any workerd service) that puts the waiting room in front of
// an origin. Bindings (see ../README.md):
//   WR_EDGE_CONFIG   the edge configuration as JSON text, without `keys`
//   WR_EDGE_KEYS     secret: the key ring, {"active": "k1", "keys": {"k1": "<base64>"}}
//   WR_ORIGIN        where admitted and bypass traffic goes
//   WR_QUEUE_ORIGIN  origin-queue (join, status, the waiting-room page)
//   WR_CLIENT_ADDRESS_HEADER  a header the platform sets and overwrites with the client
//                    address (default cf-connecting-ip, which Cloudflare sets); "" for none
//   WR_RATE_LIMITER  optional: a Rate Limiting binding, asked before the decision
import wasm from '../pkg/wr_edge_js_bg.wasm';
import { init } from '../js/edge.js';
import { handleWorkerRequest } from './handler.js';

init(wasm);

export default {
  fetch: (request, env, ctx) => handleWorkerRequest(request, env, ctx),
};
