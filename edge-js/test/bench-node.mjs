// Node: `node test/bench-node.mjs <bench.json>` prints nanoseconds per decision.
import { readFileSync } from 'node:fs';
import { init } from '../js/edge.js';
import { decideMany } from './bench.js';

init(readFileSync(new URL('../pkg/wr_edge_js_bg.wasm', import.meta.url)));
const bench = JSON.parse(readFileSync(process.argv[2], 'utf8'));
decideMany({ ...bench, n: Math.min(bench.n, 2000) }); // warm-up
const started = process.hrtime.bigint();
decideMany(bench);
const elapsed = Number(process.hrtime.bigint() - started);
process.stdout.write(`${elapsed / bench.n}\n`);
