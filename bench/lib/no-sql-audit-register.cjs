// BENCH ONLY — preloaded into a gateway process by the audit scenario (bench/audit-scenario.ts) with
// `node --require <this file> bin/tollgate serve …`, never by Tollgate itself: swaps the audit
// writer module (src/store/audit-writer.ts) for bench/lib/no-sql-audit-writer.ts, so that the
// writer thread takes, acknowledges and counts every record as usual but neither hashes nor
// writes it. What it measures: the audit stage and the hand-off to the writer thread and back
// (messages, acknowledgements, thread wake-ups), without SQLite's work and the chain's hashing. A CommonJS preload because
// worker threads run `--require` preloads and not `--import` ones (Node 20): the hook must be
// registered in the writer thread itself.
'use strict';
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS preload, for the reason above */
const { register } = require('node:module');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

register('./module-swap-hooks.mjs', {
  parentURL: pathToFileURL(__filename),
  data: { swaps: [{ target: '/src/store/audit-writer.ts', stub: pathToFileURL(path.join(__dirname, 'no-sql-audit-writer.ts')).href }] },
});
