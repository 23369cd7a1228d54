// Node runner: `node test/node.mjs <suite.json>` prints the outcomes as JSON.
import { readFileSync } from 'node:fs';
import { init } from '../js/edge.js';
import { runCases } from './run-cases.js';

init(readFileSync(new URL('../pkg/wr_edge_js_bg.wasm', import.meta.url)));
const suite = JSON.parse(readFileSync(process.argv[2], 'utf8'));
process.stdout.write(JSON.stringify(runCases(suite)));
