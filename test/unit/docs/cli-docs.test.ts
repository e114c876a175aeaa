// docs/cli.md is generated from the command definitions; this fails when it is stale. Fix by
// running `node --import tsx scripts/generate-cli-docs.ts` and committing the page.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { buildProgram } from '../../../src/cli/main.ts';
import { CLI_DOCS_PATH, renderCliDocs } from '../../../scripts/generate-cli-docs.ts';

t.test('docs/cli.md matches the commander program', async (t) => {
  const current = readFileSync(CLI_DOCS_PATH, 'utf8');
  t.ok(current === renderCliDocs(), 'docs/cli.md is stale: run node --import tsx scripts/generate-cli-docs.ts');
});

t.test('every verb of the program has a section', async (t) => {
  const page = readFileSync(CLI_DOCS_PATH, 'utf8');
  const walk = (cmd: ReturnType<typeof buildProgram>, prefix: string): string[] =>
    cmd.commands.flatMap((c) => [`${prefix} ${c.name()}`, ...walk(c, `${prefix} ${c.name()}`)]);
  const verbs = walk(buildProgram(), 'tollgate');
  t.ok(verbs.length > 10, 'the program has its verbs');
  for (const v of verbs) t.ok(page.includes(`\`${v}\`\n`), `section for ${v}`);
});
