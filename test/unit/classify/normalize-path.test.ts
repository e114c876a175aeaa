import t from 'tap';
import { normalizePath } from '../../../src/classify/normalize-path.ts';

const OK: [string, string][] = [
  ['/', '/'],
  ['/user', '/user'],
  ['/repos/o/r/', '/repos/o/r/'],
  ['/v1/messages', '/v1/messages'],
  ['/a.b/c~d/e_f-g', '/a.b/c~d/e_f-g'],
  ['/.well-known/x', '/.well-known/x'],
  ['/a/.../b', '/a/.../b'],
  ['/a/..b/.c', '/a/..b/.c'],
  // 3.01 dot segments, plain and encoded: resolved, and the result is what is forwarded
  ['/repos/o/r/../../../admin/x', '/admin/x'],
  ['/repos/o/r/%2e%2e/%2e%2e/%2e%2e/admin/x', '/admin/x'],
  ['/repos/o/r/%2E%2E/%2E%2E/%2E%2E/admin/x', '/admin/x'],
  ['/repos/o/r/.%2e/x', '/repos/o/x'],
  ['/repos/o/r/%2e./x', '/repos/o/x'],
  ['/repos/o/r/./actions/secrets/S', '/repos/o/r/actions/secrets/S'],
  ['/repos/o/r/%2e/actions/secrets/S', '/repos/o/r/actions/secrets/S'],
  ['/a/b/..', '/a/'],
  ['/a/b/.', '/a/b/'],
  ['/a/b/%2e', '/a/b/'],
  ['/a/..', '/'],
  ['/.', '/'],
  ['/./', '/'],
  // 3.02 repeated slashes and empty segments
  ['//admin/x', '/admin/x'],
  ['///admin//x//', '/admin/x/'],
  ['//', '/'],
  ['/repos//o/r/actions/secrets/S', '/repos/o/r/actions/secrets/S'],
  ['/repos/o/r/actions//secrets/S', '/repos/o/r/actions/secrets/S'],
  ['/repos/o/r/actions/secrets/S/', '/repos/o/r/actions/secrets/S/'],
  // 3.03 case is kept; encoded unreserved characters are decoded
  ['/ADMIN/x', '/ADMIN/x'],
  ['/Admin/x', '/Admin/x'],
  ['/%61dmin/x', '/admin/x'],
  ['/%41DMIN/x', '/ADMIN/x'],
  ['/repos/o/r/actions/%73ecrets/S', '/repos/o/r/actions/secrets/S'],
  ['/v1/models%2elist', '/v1/models.list'],
  ['/%7e%5F%2D', '/~_-'],
  // other escapes stay, with upper-case hex
  ['/a%20b', '/a%20b'],
  ['/caf%c3%a9', '/caf%C3%A9'],
  ['/%25', '/%25'],
  ['/%25%32%66', '/%252f'],
  ['/a%3bb', '/a%3Bb'],
  ['/a;b=c/d', '/a;b=c/d'],
  ['/a|b[c]{d}', '/a|b[c]{d}'],
  ['/a@b:c', '/a@b:c'],
];

t.test('normalizePath: canonical forms', async (t) => {
  for (const [input, path] of OK) t.same(normalizePath(input), { ok: true, path }, input);
});

t.test('normalizePath is idempotent on the table', async (t) => {
  for (const [input] of OK) {
    const once = normalizePath(input);
    if (!once.ok) throw new Error(input);
    t.same(normalizePath(once.path), once, input);
  }
});

t.test('normalizePath: refusals (security cases 3.01, 1.12)', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /start with/],
    ['user', /start with/],
    ['*', /start with/],
    ['http://h/x', /start with/],
    ['/repos/o/r/%2E%2E%2Fadmin', /encoded slash/],
    ['/repos/o/r/..%2fadmin', /encoded slash/],
    ['/repos/o/r/..%5cadmin', /encoded backslash/],
    ['/repos/o/r/..%5Cadmin', /encoded backslash/],
    ['/repos\\..\\admin/x', /backslash/],
    ['/a\\b', /backslash/],
    ['/a%00b', /NUL/],
    ['/a\u0000b', /NUL/],
    ['/a%0d%0aX-Injected:%20y', /control/],
    ['/a%7f', /control/],
    ['/a%1F', /control/],
    ['/a\rb', /control/],
    ['/a b', /whitespace/],
    ['/a\tb', /whitespace/],
    ['/a\u007fb', /control/],
    ['/café', /non-ASCII/],
    ['/a%zz', /malformed/],
    ['/a%4', /malformed/],
    ['/a%', /malformed/],
    ['/a%g0', /malformed/],
    ['/a%%41', /malformed/],
    ['/a?b', /query/],
    ['/a#b', /fragment/],
    ['/..', /above the root/],
    ['/../admin', /above the root/],
    ['/a/../../admin', /above the root/],
    ['/%2e%2e/admin', /above the root/],
    ['/a/..;/admin', /ambiguous/],
    ['/a/.;x/admin', /ambiguous/],
    ['/a/%2e%2e;/admin', /ambiguous/],
  ];
  for (const [input, message] of cases) {
    const r = normalizePath(input);
    t.equal(r.ok, false, JSON.stringify(input));
    if (!r.ok) {
      t.equal(r.reason, 'malformed_request');
      t.match(r.message, message, JSON.stringify(input));
    }
  }
});

t.test('normalizePath is idempotent on generated paths', async (t) => {
  // Deterministic LCG so a failure is reproducible.
  let seed = 0x2545f491;
  const next = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const pieces = ['/', '/', '.', '..', '%2e', '%2E', 'a', 'B', '%41', '%7e', '%20', '%c3', '%25', ';', '~', '-', '_', '%2f', '%5c', '\\', '%zz', '//', 'x'];
  let accepted = 0;
  for (let n = 0; n < 5000; n++) {
    let p = '/';
    const parts = 1 + next(10);
    for (let i = 0; i < parts; i++) p += pieces[next(pieces.length)];
    const once = normalizePath(p);
    if (!once.ok) continue;
    accepted++;
    const twice = normalizePath(once.path);
    if (!twice.ok || twice.path !== once.path) {
      t.fail(`not idempotent: ${JSON.stringify(p)} → ${once.path} → ${JSON.stringify(twice)}`);
      return;
    }
    if (once.path.includes('//') || /(^|\/)\.\.?(\/|$)/.test(once.path)) {
      t.fail(`not canonical: ${JSON.stringify(p)} → ${once.path}`);
      return;
    }
  }
  t.ok(accepted > 500, `exercised ${accepted} accepted paths`);
});
