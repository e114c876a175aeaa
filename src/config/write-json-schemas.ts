// Owns: writing the published JSON Schemas under schema/ from the TypeBox definitions.
// Run: node --import tsx src/config/write-json-schemas.ts   (test/unit/config/org-schema-files.test.ts
// fails when a checked-in file is stale). Shell: writes files.
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PUBLISHED_SCHEMAS, renderJsonSchema } from './policy-schemas.ts';

export function writeJsonSchemas(repoRoot: string): string[] {
  const written: string[] = [];
  for (const { file, schema } of PUBLISHED_SCHEMAS) {
    const abs = path.join(repoRoot, file);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, renderJsonSchema(schema));
    written.push(file);
  }
  return written;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  for (const f of writeJsonSchemas(root)) process.stdout.write(`wrote ${f}\n`);
}
