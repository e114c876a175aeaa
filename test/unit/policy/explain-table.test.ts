// The words of explainBinding and explainDecision for every credential kind and verdict; the
// main cases (with the P0 fixture) are in explain.test.ts.
import t from 'tap';
import { explainBinding, explainDecision } from '../../../src/policy/explain.ts';
import { parseHostPattern } from '../../../src/policy/match/host-pattern.ts';
import type { CredentialBindingRef, Decision, HostPattern } from '../../../src/policy/types.ts';
import { decideLine, loadBase } from '../../fixtures/policies/load-fixture.ts';

const ref = (over: Partial<CredentialBindingRef>): CredentialBindingRef => ({
  name: 'b', id: 'policies/a.yaml:9', kind: 'bearer', secret: 'sec', host: 'w.example', project: undefined, headerName: 'authorization',
  template: undefined, username: undefined, queryName: undefined, awsRegion: undefined, awsService: undefined, requirePlaceholder: undefined, ...over,
});
const host = (text: string): HostPattern => {
  const p = parseHostPattern(text);
  if (!p.ok) throw new Error(p.message);
  return p.pattern;
};

t.test('explainBinding: each kind, and the scope it is narrowed to', async (t) => {
  const cases: [string, CredentialBindingRef, ReadonlySet<string> | null, { glob: string }[] | null, string][] = [
    ['header without a template', ref({ kind: 'header', headerName: 'x-key' }), null, null, 'inject x-key: <sec> for w.example'],
    ['header with a template', ref({ kind: 'header', headerName: 'x-key', template: 'Key {secret}' }), null, null, 'inject x-key: Key <sec> for w.example'],
    ['query, narrowed by method', ref({ kind: 'query', queryName: 'key' }), new Set(['GET', 'HEAD', 'POST']), null, 'inject query parameter key=<sec> for w.example (GET, POST)'],
    ['basic, narrowed by path and project', ref({ kind: 'basic', username: 'me' }), null, [{ glob: '/api/**' }], 'inject Authorization: Basic <me:sec> for w.example (on /api/**)'],
    ['bearer for a project', ref({ project: 'p' }), new Set(['PUT']), [{ glob: '/a' }, { glob: '/b' }], 'inject Authorization: Bearer <sec> for w.example (PUT, on /a or /b, when acting for project p)'],
  ];
  for (const [why, r, methods, paths, want] of cases) t.equal(explainBinding(r, host('w.example'), methods, paths), want, why);
});

t.test('explainDecision: how each injected credential is described', async (t) => {
  const allow = decideLine(loadBase(), { team: 'alpha' }, 'GET https://echo.allowed.test/');
  const credentials = [
    ref({ name: 'b1', kind: 'basic', username: 'me' }),
    ref({ name: 'q1', kind: 'query', queryName: 'key' }),
    ref({ name: 'a1', kind: 'aws', secret: 'aws-keys' }),
    ref({ name: 'h1', kind: 'header', headerName: 'x-key' }),
  ];
  const text = explainDecision({ ...allow, explanation: allow.explanation, credentials });
  t.match(text, [
    '  credentials injected:',
    '    - b1 (policies/a.yaml:9): Authorization: Basic as me with secret sec',
    '    - q1 (policies/a.yaml:9): query key from secret sec',
    '    - a1 (policies/a.yaml:9): AWS SigV4 re-signing with secret aws-keys',
    '    - h1 (policies/a.yaml:9): x-key from secret sec',
  ].join('\n'));
});

t.test('explainDecision: a direct tunnel', async (t) => {
  const d: Decision = decideLine(loadBase(), { team: 'alpha' }, 'CONNECT x.cdn.example.net:443');
  t.equal(d.effect, 'direct');
  const text = explainDecision(d, { method: 'CONNECT', url: 'x.cdn.example.net:443' });
  t.match(text, /^DIRECT CONNECT x\.cdn\.example\.net:443\n/);
  t.notMatch(text, /intercept:/, 'only an allow is intercepted');
  t.match(text, /\n {2}credentials injected: none\n$/);
});
