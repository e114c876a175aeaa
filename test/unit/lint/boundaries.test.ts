// The layer boundaries of eslint.config.js, shown firing: each fixture in test/fixtures/lint is
// linted through ESLint's Node API as if it sat at a path under src/, and the test asserts which
// imports the `no-restricted-imports` rule reports (by line), never the message text.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import t from 'tap';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const fixtures = path.join(root, 'test/fixtures/lint');
const eslint = new ESLint({ cwd: root });

/** Lines that `no-restricted-imports` reports when `fixture` is linted as `asPath`. */
async function restrictedLines(fixture: string, asPath: string): Promise<number[]> {
  const code = readFileSync(path.join(fixtures, fixture), 'utf8');
  const [result] = await eslint.lintText(code, { filePath: path.join(root, asPath) });
  if (!result) throw new Error(`no lint result for ${fixture}`);
  const fatal = result.messages.filter((m) => m.fatal);
  if (fatal.length) throw new Error(`${fixture} does not parse: ${fatal[0]?.message}`);
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.line);
}

const cases: { fixture: string; as: string; lines: number[]; why: string }[] = [
  { fixture: 'pure-imports-net.ts', as: 'src/classify/lint-fixture.ts', lines: [2], why: 'pure core imports node:net' },
  { fixture: 'pure-imports-net.ts', as: 'src/metering/lint-fixture.ts', lines: [2], why: 'pure core imports node:net' },
  { fixture: 'pure-imports-net.ts', as: 'src/audit/build-audit-row.ts', lines: [2], why: 'pure audit file imports node:net' },
  { fixture: 'pure-imports-net.ts', as: 'src/sandbox/plan-sandbox.ts', lines: [2], why: 'sandbox plan imports node:net' },
  { fixture: 'pure-imports-net.ts', as: 'src/credentials/plan-injection.ts', lines: [2], why: 'injection plan imports node:net' },
  { fixture: 'pure-imports-net.ts', as: 'src/audit/sqlite-audit-sink.ts', lines: [], why: 'the audit sink is shell' },
  { fixture: 'pure-imports-net.ts', as: 'src/sandbox/launch-sandbox.ts', lines: [], why: 'the sandbox launcher is shell' },
  { fixture: 'pure-imports-store.ts', as: 'src/policy/lint-fixture.ts', lines: [2], why: 'pure core imports the store' },
  { fixture: 'pure-clean.ts', as: 'src/classify/lint-fixture.ts', lines: [], why: 'clean pure module' },
  { fixture: 'cert-library.ts', as: 'src/proxy/lint-fixture.ts', lines: [2], why: 'certificate library outside tls/' },
  { fixture: 'cert-library.ts', as: 'test/unit/lint-fixture.ts', lines: [2], why: 'certificate library in a test' },
  { fixture: 'cert-library.ts', as: 'src/tls/lint-fixture.ts', lines: [], why: 'certificate library in tls/' },
  { fixture: 'cert-library.ts', as: 'test/helpers/test-pki.ts', lines: [], why: 'the test PKI helper is excepted' },
  { fixture: 'database-driver.ts', as: 'src/ledger/lint-fixture.ts', lines: [2], why: 'database driver outside store/' },
  { fixture: 'database-driver.ts', as: 'src/policy/lint-fixture.ts', lines: [2], why: 'database driver in the pure core' },
  { fixture: 'database-driver.ts', as: 'src/store/lint-fixture.ts', lines: [], why: 'database driver in store/' },
  { fixture: 'data-plane-imports-cli.ts', as: 'src/proxy/lint-fixture.ts', lines: [3, 4], why: 'proxy imports cli and admin' },
  { fixture: 'data-plane-imports-cli.ts', as: 'src/upstream/lint-fixture.ts', lines: [3, 4], why: 'upstream imports cli and admin' },
  { fixture: 'data-plane-imports-cli.ts', as: 'src/stages/lint-fixture.ts', lines: [3, 4], why: 'a stage imports cli and admin' },
  { fixture: 'data-plane-imports-cli.ts', as: 'src/agents/lint-fixture.ts', lines: [], why: 'outside the data plane' },
];

for (const c of cases) {
  t.test(`${c.fixture} as ${c.as}: ${c.why}`, async (t) => {
    t.same(await restrictedLines(c.fixture, c.as), c.lines);
  });
}

t.test('the fixtures are left out of the normal lint run', async (t) => {
  t.ok(await eslint.isPathIgnored(path.join(fixtures, 'pure-imports-net.ts')));
});
