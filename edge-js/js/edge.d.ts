/** A header change the edge asks for before forwarding. */
export type HeaderChange = { op: 'remove'; name: string } | { op: 'set'; name: string; value: string };

/** An admitted request's session: hand it back with the response's headers to
 * {@link Edge.respond}. */
export interface Session {
  event: string;
  pass: string;
}

/** What to do with a request. */
export type Outcome =
  | {
      action: 'forward';
      changes: HeaderChange[];
      to_queue: boolean;
      /** Present when a pass admitted the request and the backend may end sessions. */
      session?: Session;
      counters: string[];
    }
  | {
      action: 'reply';
      status: number;
      headers: [string, string][];
      body: string;
      /** Why a pass was refused ('missing', 'expired', 'bad_signature', ...), if that is why. */
      rejection: string | null;
      counters: string[];
    };

/** A change to the origin's response before it goes to the visitor. */
export type ResponseChange = { op: 'remove'; name: string } | { op: 'add'; name: string; value: string };

/** What to do with a response: its changes, and a report for origin-queue to send after
 * it when the backend ended the session. */
export interface ResponseOutcome {
  changes: ResponseChange[];
  report: { path: string; body: string; timeout_ms: number; cluster: string; authority: string } | null;
  counters: string[];
}

/** The core's input. */
export interface EdgeRequest {
  /** Path and query as received. */
  path: string | null;
  /** Every header as [name, value]. */
  headers: [string, string][];
  /** The client address as the platform established it, or null. */
  source: string | null;
}

/** Options of {@link Edge.handle}. */
export interface HandleOptions {
  /** Where admitted and bypass traffic goes, e.g. "https://shop.example". */
  origin: string;
  /** Where origin-queue's routes go (/v1/events/…, /waiting-room/…). */
  queueOrigin: string;
  /** The client address as the platform established it (never a client-set header). */
  source?: string | null;
  /** The clock, unix milliseconds (default Date.now()). */
  now?: number;
  /** The fetch to forward with (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Called with the counters of every decision (and of a response that ends a session). */
  onCounters?: (counters: string[]) => void;
  /** Keeps the runtime alive for a session-end report sent after the response (a
   * Worker's `ctx.waitUntil`). */
  waitUntil?: (promise: Promise<unknown>) => void;
  /** How a session-end report went. */
  onReport?: (result: 'reported' | 'failed') => void;
}

/** Loads the WebAssembly core; call once per isolate. */
export function init(module: WebAssembly.Module | BufferSource): void;

/** The waiting room's edge for one isolate. */
export class Edge {
  /** Throws if the configuration has problems, among them a cut (`not_before`) later than `nowMs`. */
  constructor(config: object | string, nowMs?: number);
  decide(request: EdgeRequest, nowMs?: number): Outcome;
  respond(session: Session | null | undefined, headers: [string, string][], nowMs?: number): ResponseOutcome;
  handle(request: Request, options: HandleOptions): Promise<Response>;
  static rateLimited(retryAfterSeconds?: number): Outcome;
  static counterNames(): string[];
}

/** The Response of a reply outcome. */
export function toResponse(outcome: Outcome): Response;

export { solveChallenge, workOf } from './pow.js';
