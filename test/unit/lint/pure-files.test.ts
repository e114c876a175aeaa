// The pure core is named twice — in eslint.config.js (no I/O imports) and in .c8rc.pure.json
// (100 % lines and branches) — so this holds the two lists together.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

t.test('the lint rule and the coverage gate name the same pure files', async (t) => {
  const config = (await import(pathToFileURL(path.join(root, 'eslint.config.js')).href)) as {
    PURE_FILES: string[];
    SHELL_FILES_IN_PURE_FOLDERS: string[];
  };
  const c8 = JSON.parse(readFileSync(path.join(root, '.c8rc.pure.json'), 'utf8')) as { include: string[]; exclude: string[] };
  t.same([...c8.include].sort(), [...config.PURE_FILES].sort(), 'include = PURE_FILES');
  for (const shell of config.SHELL_FILES_IN_PURE_FOLDERS) t.ok(c8.exclude.includes(shell), `${shell} is left out of the gate`);
});
