// Owns: the lint rules for the whole tree — typescript-eslint's recommended rules (syntax only,
// no type-aware rules, to keep `npm run lint` fast) and the layer boundaries of style.md, held by
// `no-restricted-imports`:
//   - the pure core (PURE_FILES) imports no network, file, process, database or metrics module,
//     and none of the shell folders;
//   - the certificate libraries are imported only in src/tls/ (and the test PKI helper);
//   - the database driver only in src/store/;
//   - the data plane (src/proxy, src/upstream, src/stages) never imports the CLI or the admin plane.
// ESLint applies one set of options per rule per file (a later block replaces an earlier one, it
// does not merge), so each block below is built from the whole list of bans that apply to it.
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Pure files: decisions, normalisation, usage parsing and pricing, audit event building, plans. */
export const PURE_FILES = [
  'src/classify/**/*.ts',
  'src/policy/**/*.ts',
  'src/metering/**/*.ts',
  'src/reporting/**/*.ts',
  'src/audit/**/*.ts',
  'src/identity/identity-binding.ts',
  'src/limits/principal-limits.ts',
  'src/credentials/plan-injection.ts',
  'src/credentials/redact.ts',
  'src/sandbox/plan-sandbox.ts',
  'src/sandbox/proxy-environment.ts',
  'src/sandbox/build-ca-bundle.ts',
];
/** The shell files that live inside a pure folder: they do I/O on purpose. */
export const SHELL_FILES_IN_PURE_FOLDERS = ['src/audit/sqlite-audit-sink.ts', 'src/audit/audit-commands.ts'];

const node = (names) => names.flatMap((n) => [`node:${n}`, n]);

/** Modules that do I/O: never imported by the pure core. */
const IO_MODULES = [
  ...node(['net', 'http', 'https', 'http2', 'tls', 'fs', 'fs/promises', 'child_process', 'dgram']),
  'undici',
  'better-sqlite3',
  'prom-client',
];
const CERT_MODULES = ['@peculiar/x509', 'node-forge'];
const DB_MODULES = ['better-sqlite3'];

const paths = (names, message) => names.map((name) => ({ name, message }));

const BAN = {
  io: {
    paths: paths(IO_MODULES, 'Pure core: no I/O here. Take the value as an argument, or move the code to the shell.'),
    patterns: [
      { group: ['undici/*', 'prom-client/*', 'node:fs/*', 'fs/*'], message: 'Pure core: no I/O here.' },
      {
        group: ['**/store/**', '**/upstream/**', '**/cli/**', '**/admin/**', '**/tls/**', '**/metrics/**'],
        message: 'Pure core: do not import the shell (store, upstream, cli, admin, tls, metrics); pass an interface in.',
      },
    ],
  },
  cert: {
    paths: paths(CERT_MODULES, 'The certificate library is imported only in src/tls/.'),
    patterns: [{ group: ['@peculiar/x509/*', 'node-forge/*'], message: 'The certificate library is imported only in src/tls/.' }],
  },
  db: {
    paths: paths(DB_MODULES, 'The database driver is imported only in src/store/.'),
    patterns: [],
  },
  dataPlane: {
    paths: [],
    patterns: [{ group: ['**/cli/**', '**/admin/**'], message: 'The data plane never imports the CLI or the admin plane.' }],
  },
};

/** One `no-restricted-imports` setting made of several bans (paths de-duplicated by name). */
function restrict(...bans) {
  const byName = new Map();
  for (const b of bans) for (const p of b.paths) if (!byName.has(p.name)) byName.set(p.name, p);
  return ['error', { paths: [...byName.values()], patterns: bans.flatMap((b) => b.patterns) }];
}

const DATA_PLANE = ['src/proxy/**/*.ts', 'src/upstream/**/*.ts', 'src/stages/**/*.ts'];

export default defineConfig([
  globalIgnores([
    'node_modules/',
    'test-artifacts/',
    'tmp/',
    'data/',
    'bench/results/',
    // deliberate violations, linted only by test/unit/lint/boundaries.test.ts
    'test/fixtures/lint/',
  ]),
  tseslint.configs.recommended,
  {
    rules: {
      // Core rules typescript-eslint's set leaves to @eslint/js (not a declared dependency here).
      'no-control-regex': 'error',
      // A `let` read by a closure before its one assignment cannot become a `const` (TDZ).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `_`-prefixed names are the house way to say "unused on purpose".
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  // Everything outside the special folders: no certificate library, no database driver.
  { files: ['src/**/*.ts', 'scripts/**/*.{ts,mjs,js}', 'bin/tollgate'], rules: { 'no-restricted-imports': restrict(BAN.cert, BAN.db) } },
  // Benchmarks may measure the database driver itself (raw insert rates next to the audit writer).
  { files: ['bench/**/*.ts'], rules: { 'no-restricted-imports': restrict(BAN.cert) } },
  { files: ['test/**/*.ts'], rules: { 'no-restricted-imports': restrict(BAN.cert) } },
  { files: ['test/helpers/test-pki.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['src/tls/**/*.ts'], rules: { 'no-restricted-imports': restrict(BAN.db) } },
  { files: ['src/store/**/*.ts'], rules: { 'no-restricted-imports': restrict(BAN.cert) } },
  { files: DATA_PLANE, rules: { 'no-restricted-imports': restrict(BAN.cert, BAN.db, BAN.dataPlane) } },
  {
    files: PURE_FILES,
    ignores: SHELL_FILES_IN_PURE_FOLDERS,
    rules: { 'no-restricted-imports': restrict(BAN.io, BAN.cert, BAN.db) },
  },
]);
