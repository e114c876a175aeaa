// docs/reason-codes.md is generated from src/errors.ts; this fails when it is stale. Fix by
// running `node --import tsx scripts/generate-reason-docs.ts` and committing the page.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { ERROR_CODE_TEXT, ERROR_CODES, REASONS } from '../../../src/errors.ts';
import { REASON_DOCS_PATH, renderReasonDocs } from '../../../scripts/generate-reason-docs.ts';

t.test('docs/reason-codes.md matches src/errors.ts', async (t) => {
  const current = readFileSync(REASON_DOCS_PATH, 'utf8');
  t.ok(current === renderReasonDocs(), 'docs/reason-codes.md is stale: run node --import tsx scripts/generate-reason-docs.ts');
});

t.test('every code is documented, and only those', async (t) => {
  const page = readFileSync(REASON_DOCS_PATH, 'utf8');
  for (const code of Object.keys(REASONS)) t.ok(page.includes(`| \`${code}\` |`), code);
  for (const code of ERROR_CODES) t.ok(page.includes(`| \`${code}\` |`), code);
  t.same(Object.keys(ERROR_CODE_TEXT).sort(), [...ERROR_CODES].sort());
  t.ok(Object.keys(REASONS).every((c) => /^[a-z]+(_[a-z]+)*$/.test(c)), 'reason codes are snake_case');
});
