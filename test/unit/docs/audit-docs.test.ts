// docs/reference/audit-schema.md is generated from the migrated database and the column meanings in
// src/audit/audit-record.ts; this fails when the page is stale, when a column of the real tables has
// no meaning (or a meaning names no column), or when an event type written in src/ is not listed.
// Fix the page by running `node --import tsx scripts/generate-audit-docs.ts` and committing it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { AUDIT_EVENT_COLUMNS, AUDIT_EVENT_TYPE_DOCS, AUDIT_REQUEST_COLUMNS, AUDIT_TABLE_DOCS } from '../../../src/audit/audit-record.ts';
import { REPO_ROOT } from '../../../scripts/docs-page.ts';
import {
  AUDIT_DOCS_PATH, AUDIT_TABLES, renderAuditDocs, renderAuditDocsFromMigrations, tableColumns,
} from '../../../scripts/generate-audit-docs.ts';
import { tempDb } from '../../helpers/temp-db.ts';

t.test('docs/reference/audit-schema.md matches the migrations and AUDIT_TABLE_DOCS', async (t) => {
  const current = readFileSync(AUDIT_DOCS_PATH, 'utf8');
  t.ok(current === renderAuditDocsFromMigrations(), 'docs/reference/audit-schema.md is stale: run node --import tsx scripts/generate-audit-docs.ts');
});

t.test('every column of the real audit tables has a meaning, and every meaning a column', async (t) => {
  const { db } = tempDb(t, 'tollgate-audit-docs-');
  for (const table of AUDIT_TABLES) {
    const columns = tableColumns(db, table).map((c) => c.name);
    t.ok(columns.length > 0, `${table} exists`);
    t.same([...columns].sort(), Object.keys(AUDIT_TABLE_DOCS[table].columns).sort(), `${table}: columns and meanings agree`);
    for (const [column, meaning] of Object.entries(AUDIT_TABLE_DOCS[table].columns)) t.ok(meaning.trim(), `${table}.${column} has a meaning`);
  }
  const requests = new Set(tableColumns(db, 'audit_requests').map((c) => c.name));
  t.ok(AUDIT_REQUEST_COLUMNS.every((c) => requests.has(c)), 'every chained request column is a column');
  const events = new Set(tableColumns(db, 'audit_events').map((c) => c.name));
  t.ok(AUDIT_EVENT_COLUMNS.every((c) => events.has(c)), 'every chained event column is a column');
  t.equal(renderAuditDocs(db), readFileSync(AUDIT_DOCS_PATH, 'utf8'), 'a file database renders the same page as an in-memory one');
});

/** Every `.ts` file under a folder. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : name.endsWith('.ts') ? [p] : [];
  });
}

t.test('every event type written in src/ is listed, and every listed type is written', async (t) => {
  // Events are built from `{ type: …, actor … }` literals (buildAuditEvent and the audit callbacks).
  const written = new Map<string, string>();
  for (const file of sourceFiles(path.join(REPO_ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/type:\s*([^,{}]+?),\s*actor\b/g)) {
      for (const lit of (m[1] ?? '').matchAll(/'([a-z][a-z0-9_]*)'/g)) written.set(lit[1] ?? '', path.relative(REPO_ROOT, file));
    }
  }
  t.ok(written.size >= 5, 'the scan finds the event types', { found: [...written.keys()] });
  for (const [type, file] of written) t.ok(type in AUDIT_EVENT_TYPE_DOCS, `${type} (written in ${file}) is in AUDIT_EVENT_TYPE_DOCS`);
  for (const type of Object.keys(AUDIT_EVENT_TYPE_DOCS)) t.ok(written.has(type), `${type} is written somewhere in src/`);
});
