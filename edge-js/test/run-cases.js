// Runs conformance cases through the package: for each case, its requests in order
// (one per source address listed) on a fresh Edge, and the outcome of the last one.
// Judged by the Rust side (wr_edge_core::conformance), so there is one judge.
import { Edge } from '../js/edge.js';

export function runCases(suite) {
  return suite.cases.map((c) => {
    const edge = new Edge(suite.config, suite.now_ms);
    let outcome = null;
    for (const source of c.sources) {
      outcome = edge.decide({ path: c.path, headers: c.headers, source }, suite.now_ms);
    }
    return outcome;
  });
}
