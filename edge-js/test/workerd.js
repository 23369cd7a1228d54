// workerd runner (`workerd test`): runs the suite embedded as `suite.json` and logs the
// outcomes on one line for the Rust side to judge.
import wasm from '../pkg/wr_edge_js_bg.wasm';
import suite from '../suite.json';
import { init } from '../js/edge.js';
import { runCases } from './run-cases.js';

init(wasm);

export default {
  async test() {
    console.log(`WR-OUTCOMES ${JSON.stringify(runCases(suite))}`);
  },
};
