// The waiting room's edge for JavaScript runtimes. Every decision is made by the
// WebAssembly core (the same code as the Envoy filter); this file only turns a
// `Request` into the core's input and applies its outcome. See ../README.md.
import { initSync, WaitingRoomEdge } from '../pkg/wr_edge_js.js';

let initialised = false;

/** Loads the core from a compiled `WebAssembly.Module` (workerd imports the `.wasm`
 * file as one) or the module's bytes (Node: `fs.readFileSync`). Call once per isolate. */
export function init(module) {
  if (!initialised) {
    initSync({ module });
    initialised = true;
  }
}

/** The waiting room's edge for one isolate: a validated configuration and the isolate's
 * own rate-limit state. */
export class Edge {
  /** `config`: the edge configuration (object or JSON text), as for the Envoy filter.
   * Throws an Error listing every problem. */
  constructor(config) {
    if (!initialised) throw new Error('wr-edge: call init(module) before new Edge()');
    this.core = new WaitingRoomEdge(typeof config === 'string' ? config : JSON.stringify(config));
  }

  /** Decides for `{ path, headers: [[name, value], ...], source }` at `nowMs`.
   * Returns the outcome: `{ action: 'forward', changes, to_queue, counters }` or
   * `{ action: 'reply', status, headers, body, counters }`. */
  decide(request, nowMs = Date.now()) {
    return JSON.parse(this.core.decide(JSON.stringify(request), nowMs));
  }

  /** The outcome of the edge's own 429, for a runtime limiter put in front. */
  static rateLimited(retryAfterSeconds = 1) {
    return JSON.parse(WaitingRoomEdge.rateLimited(retryAfterSeconds));
  }

  /** Every counter name an outcome may list. */
  static counterNames() {
    return WaitingRoomEdge.counterNames();
  }

  /** Puts the waiting room in front of an origin: decides for `request` and either
   * answers (302 / 400 / 403 / 429) or forwards it, with the outcome's header changes,
   * to `options.origin` (or `options.queueOrigin` for origin-queue's routes).
   * `options.source` is the client address as the platform established it. */
  async handle(request, options) {
    const url = new URL(request.url);
    const path = url.pathname + url.search;
    const outcome = this.decide(
      { path, headers: [...request.headers], source: options.source ?? null },
      options.now ?? Date.now(),
    );
    options.onCounters?.(outcome.counters);
    if (outcome.action === 'reply') return toResponse(outcome);
    return forward(request, path, outcome, options);
  }
}

/** The Response of a reply outcome. */
export function toResponse(outcome) {
  return new Response(outcome.body === '' ? null : outcome.body, {
    status: outcome.status,
    headers: outcome.headers,
  });
}

async function forward(request, path, outcome, options) {
  const origin = outcome.to_queue ? options.queueOrigin : options.origin;
  const headers = new Headers(request.headers);
  headers.delete('host');
  for (const change of outcome.changes) {
    if (change.op === 'remove') headers.delete(change.name);
    else headers.set(change.name, change.value);
  }
  const init = { method: request.method, headers, redirect: 'manual' };
  if (request.method !== 'GET' && request.method !== 'HEAD') init.body = request.body;
  return (options.fetch ?? fetch)(new URL(path, origin), init);
}
