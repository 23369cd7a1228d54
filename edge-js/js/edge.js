// The waiting room's edge for JavaScript runtimes. Every decision is made by the
// WebAssembly core (the same code as the Envoy filter); this file only turns a
// `Request` into the core's input and applies its outcome. See ../README.md.
import { initSync, WaitingRoomEdge } from '../pkg/wr_edge_js.js';

export { solveChallenge, workOf } from './pow.js';

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
   * Throws an Error listing every problem, among them an event's cut (`not_before`)
   * later than `nowMs` (it would refuse every pass, new ones too). */
  constructor(config, nowMs = Date.now()) {
    if (!initialised) throw new Error('wr-edge: call init(module) before new Edge()');
    this.core = new WaitingRoomEdge(typeof config === 'string' ? config : JSON.stringify(config), nowMs);
  }

  /** Decides for `{ path, headers: [[name, value], ...], source }` at `nowMs`.
   * Returns the outcome: `{ action: 'forward', changes, to_queue, session?, counters }`
   * or `{ action: 'reply', status, headers, body, rejection, counters }` (`rejection`:
   * why a pass was refused, `'missing'`, `'expired'`, `'unknown_key'`, …, or null; the
   * names are the same on every runtime, see docs/edge.md). Keep `session` for
   * `respond`. */
  decide(request, nowMs = Date.now()) {
    return JSON.parse(this.core.decide(JSON.stringify(request), nowMs));
  }

  /** Decides for a response: `session` from the request's forward outcome (or null),
   * `headers` the response's `[[name, value], ...]`. Returns `{ changes: [{op: 'remove',
   * name} | {op: 'add', name, value}], report: { path, body, timeout_ms } | null,
   * counters }`: apply the changes, then send the report to origin-queue after the
   * response (a Worker: `ctx.waitUntil`). */
  respond(session, headers, nowMs = Date.now()) {
    return JSON.parse(this.core.respond(JSON.stringify(session ?? null), JSON.stringify(headers), nowMs));
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
   * `options.source` is the client address as the platform established it. When the
   * backend ends the session (the session-end header), the response loses the header
   * and expires the pass, and origin-queue is told after the response:
   * `options.waitUntil(promise)` keeps the runtime alive for it (a Worker's
   * `ctx.waitUntil`); `options.onReport(result)` hears `'reported'` or `'failed'`. */
  async handle(request, options) {
    const url = new URL(request.url);
    const path = url.pathname + url.search;
    const outcome = this.decide(
      { path, headers: [...request.headers], source: options.source ?? null },
      options.now ?? Date.now(),
    );
    options.onCounters?.(outcome.counters);
    if (outcome.action === 'reply') return toResponse(outcome);
    const response = await forward(request, path, outcome, options);
    return this.#respond(response, outcome, options);
  }

  #respond(response, outcome, options) {
    if (outcome.to_queue) return response;
    const answer = this.respond(outcome.session ?? null, [...response.headers], options.now ?? Date.now());
    if (answer.changes.length === 0) return response;
    options.onCounters?.(answer.counters);
    const headers = new Headers(response.headers);
    for (const change of answer.changes) {
      if (change.op === 'remove') headers.delete(change.name);
      else headers.append(change.name, change.value);
    }
    if (answer.report) {
      const sent = report(answer.report, options).then(
        (result) => options.onReport?.(result),
        () => options.onReport?.('failed'),
      );
      options.waitUntil?.(sent);
    }
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}

/** Sends a session-end report to origin-queue; `'reported'` (200 freed, 409 already
 * ended) or `'failed'`. */
async function report(r, options) {
  const signal = AbortSignal.timeout(r.timeout_ms);
  const response = await (options.fetch ?? fetch)(new URL(r.path, options.queueOrigin), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: r.body,
    signal,
  });
  await response.body?.cancel();
  return response.status === 200 || response.status === 409 ? 'reported' : 'failed';
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
