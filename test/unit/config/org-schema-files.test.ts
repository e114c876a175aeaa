// The JSON Schemas under schema/ are generated from the TypeBox definitions; this fails when a
// checked-in file is stale. Regenerate: node --import tsx src/config/write-json-schemas.ts
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PUBLISHED_SCHEMAS, renderJsonSchema } from '../../../src/config/policy-schemas.ts';
import { REPO } from '../../fixtures/policies/load-fixture.ts';

for (const { file, schema } of PUBLISHED_SCHEMAS) {
  t.test(file, async (t) => {
    const onDisk = readFileSync(path.join(REPO, file), 'utf8');
    t.equal(onDisk, renderJsonSchema(schema), `${file} is stale: run node --import tsx src/config/write-json-schemas.ts`);
    const parsed = JSON.parse(onDisk) as { $schema: string; additionalProperties: boolean };
    t.equal(parsed.additionalProperties, false);
  });
}

t.test('every field has a description', async (t) => {
  const missing: string[] = [];
  const walk = (node: unknown, where: string) => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (n.properties && typeof n.properties === 'object') {
      for (const [k, v] of Object.entries(n.properties as Record<string, unknown>)) {
        const d = v as Record<string, unknown>;
        if (typeof d.description !== 'string') missing.push(`${where}.${k}`);
        walk(v, `${where}.${k}`);
      }
    }
    for (const key of ['items', 'patternProperties', 'anyOf']) {
      const c = n[key];
      if (Array.isArray(c)) c.forEach((x, i) => walk(x, `${where}[${i}]`));
      else if (c && typeof c === 'object') {
        if (key === 'patternProperties') for (const v of Object.values(c)) walk(v, `${where}.*`);
        else walk(c, `${where}[]`);
      }
    }
  };
  for (const { file, schema } of PUBLISHED_SCHEMAS) walk(JSON.parse(renderJsonSchema(schema)), file);
  t.same(missing, []);
});
