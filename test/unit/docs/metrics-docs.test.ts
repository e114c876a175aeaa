// docs/reference/metrics.md is generated from the metric catalogue; this fails when it is stale, and
// when the prose page docs/metrics.md names a metric the gateway does not serve. Fix the reference by
// running `node --import tsx scripts/generate-metrics-docs.ts` and committing the page.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '../../../scripts/docs-page.ts';
import { gatewayMetrics, LINUX_ONLY_PROCESS_METRICS, METRICS_DOCS_PATH, renderMetricsDocs } from '../../../scripts/generate-metrics-docs.ts';

t.test('docs/reference/metrics.md matches the metric catalogue', async (t) => {
  const current = readFileSync(METRICS_DOCS_PATH, 'utf8');
  t.ok(current === renderMetricsDocs(), 'docs/reference/metrics.md is stale: run node --import tsx scripts/generate-metrics-docs.ts');
});

t.test('every metric the gateway registers has a row', async (t) => {
  const page = readFileSync(METRICS_DOCS_PATH, 'utf8');
  const { own, process } = gatewayMetrics();
  t.ok(own.length > 20, 'the catalogue has its metrics');
  for (const m of own) {
    t.ok(m.name.startsWith('tollgate_'), `${m.name} has the tollgate_ prefix`);
    t.ok(m.help.trim(), `${m.name} has help text`);
    t.ok(page.includes(`| \`${m.name}\` | ${m.type} |`), `${m.name} has a row`);
  }
  for (const m of process) {
    const linuxOnly = LINUX_ONLY_PROCESS_METRICS.includes(m.name.replace(/^tollgate_/, ''));
    t.ok(page.includes(linuxOnly ? `\`${m.name}\`` : `| \`${m.name}\` | ${m.type} |`), `${m.name} is named`);
  }
});

t.test('docs/metrics.md names only metrics the gateway serves', async (t) => {
  const prose = readFileSync(path.join(REPO_ROOT, 'docs/metrics.md'), 'utf8');
  const { own, process } = gatewayMetrics();
  const served = new Set([...own, ...process].map((m) => m.name));
  const named = new Set([...prose.matchAll(/\btollgate_[a-z0-9_]+/g)].map((m) => m[0]).filter((n) => !n.endsWith('_')));
  t.ok(named.size > 0, 'the prose names metrics');
  for (const n of named) t.ok(served.has(n) || served.has(n.replace(/_(bucket|sum|count)$/, '')), `${n} is served`);
});
