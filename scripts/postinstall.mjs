// After `npm ci`: build tap's test class for the plugin set in package.json (TypeScript is loaded
// through tsx, not tap's ts-node plugin). Skipped when dev dependencies are not installed.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (existsSync('node_modules/.bin/tap')) {
  execFileSync('node_modules/.bin/tap', ['build'], { stdio: ['ignore', 'ignore', 'inherit'] });
}
