// workerd (`workerd test`): `n` decisions of the request in `bench.json`; the caller
// times the process with n and with none.
import wasm from '../pkg/wr_edge_js_bg.wasm';
import bench from '../bench.json';
import { init } from '../js/edge.js';
import { decideMany } from './bench.js';

init(wasm);

export default {
  async test() {
    decideMany(bench);
  },
};
