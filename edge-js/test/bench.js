// `make bench`: `n` decisions of one request through the package. Timed from outside
// (workerd freezes clocks while a request runs); Node also times itself.
import { Edge } from '../js/edge.js';

export function decideMany(bench) {
  const edge = new Edge(bench.config);
  let forwarded = 0;
  for (let i = 0; i < bench.n; i++) {
    if (edge.decide(bench.request, bench.now_ms).action === 'forward') forwarded++;
  }
  if (bench.n > 0 && forwarded !== bench.n) throw new Error(`only ${forwarded} of ${bench.n} forwarded`);
  return forwarded;
}
