// Runs the tap suite over every test/**/*.test.ts (TypeScript loaded through tsx; tap's own
// TypeScript plugin is disabled, so tap is handed the file list explicitly). Extra arguments
// narrow the run: `npm test -- test/unit/classify`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function collect(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const roots = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const files = (roots.length ? roots : ['test']).flatMap((r) => (statSync(r).isDirectory() ? collect(r, []) : [r])).sort();
const res = spawnSync('node_modules/.bin/tap', [...flags, ...files], { stdio: 'inherit' });
process.exit(res.status ?? 1);
