// planInjection, findPlaceholderLeak and renderHeaderValue over tables of the less common shapes:
// hosts no provider entry knows, duplicate bindings (the first wins), query-string placeholders,
// and basic auth without a username. The security cases live in plan-injection.test.ts.
import t from 'tap';
import { findPlaceholderLeak, planInjection, renderHeaderValue, type HeaderList } from '../../../src/credentials/plan-injection.ts';
import type { CredentialBindingRef } from '../../../src/policy/types.ts';

const ref = (over: Partial<CredentialBindingRef>): CredentialBindingRef => ({
  name: 'b', id: 'policies/x.yaml:1', kind: 'bearer', secret: 's', host: 'h', project: undefined, headerName: 'authorization',
  template: 'Bearer {secret}', username: undefined, queryName: undefined, awsRegion: undefined, awsService: undefined, requirePlaceholder: undefined, ...over,
});
const sorted = (xs: readonly string[]) => [...xs].sort();

t.test('a bound host with no binding for this path: what is removed', async (t) => {
  const cases: { why: string; host: string; hostBound: boolean | undefined; headers: string[]; query: string[] }[] = [
    { why: 'unknown provider: authorization', host: 'git.internal.example', hostBound: true, headers: ['authorization', 'proxy-authorization'], query: [] },
    { why: 'Gemini: key headers and the key parameter', host: 'generativelanguage.googleapis.com', hostBound: true, headers: ['authorization', 'proxy-authorization', 'x-goog-api-key'], query: ['key'] },
    { why: 'Azure OpenAI', host: 'acme.openai.azure.com', hostBound: true, headers: ['api-key', 'authorization', 'proxy-authorization'], query: [] },
    { why: 'not bound: only the proxy credentials', host: 'generativelanguage.googleapis.com', hostBound: false, headers: ['proxy-authorization'], query: [] },
    { why: 'hostBound left out', host: 'api.openai.com', hostBound: undefined, headers: ['proxy-authorization'], query: [] },
  ];
  for (const c of cases) {
    const plan = planInjection([], { host: c.host, headers: [], hostBound: c.hostBound });
    if (!plan.ok) throw new Error(c.why);
    t.same(sorted(plan.removeHeaders), c.headers, `${c.why}: headers`);
    t.same(plan.removeQuery, c.query, `${c.why}: query`);
    t.same(plan.bindings, [], c.why);
  }
});

t.test('duplicate bindings: the first for each header, parameter or aws wins; all are removed', async (t) => {
  const plan = planInjection([
    ref({ name: 'h1', kind: 'header', headerName: 'X-Key', template: '{secret}', secret: 'k1' }),
    ref({ name: 'h2', kind: 'header', headerName: 'x-key', template: 'again {secret}', secret: 'k2' }),
    ref({ name: 'bearer-default', kind: 'bearer', headerName: undefined, template: undefined, secret: 'b1' }),
    ref({ name: 'q1', kind: 'query', headerName: undefined, queryName: 'token', secret: 'q1' }),
    ref({ name: 'q2', kind: 'query', headerName: undefined, queryName: 'token', secret: 'q2' }),
    ref({ name: 'a1', kind: 'aws', headerName: undefined, secret: 'aws1', awsRegion: 'eu-west-1', awsService: 's3' }),
    ref({ name: 'a2', kind: 'aws', headerName: undefined, secret: 'aws2' }),
  ], { host: 'generativelanguage.googleapis.com', headers: [] });
  if (!plan.ok) throw new Error('plan');
  t.same(plan.setHeaders, [
    { name: 'x-key', secret: 'k1', format: 'template', template: '{secret}', username: undefined, binding: 'h1' },
    { name: 'authorization', secret: 'b1', format: 'template', template: '{secret}', username: undefined, binding: 'bearer-default' },
  ]);
  t.same(plan.setQuery, [{ name: 'token', secret: 'q1', binding: 'q1' }]);
  t.same(plan.aws, { secret: 'aws1', region: 'eu-west-1', service: 's3', binding: 'a1' });
  t.same(sorted(plan.removeHeaders), ['authorization', 'proxy-authorization', 'x-amz-security-token', 'x-goog-api-key', 'x-key']);
  t.same(sorted(plan.removeQuery), ['key', 'token']);
  t.same(plan.bindings, ['h1', 'bearer-default', 'q1', 'a1'], 'the losers are not reported as applied');
});

t.test('require_placeholder on a query binding', async (t) => {
  const b = [ref({ name: 'q', kind: 'query', headerName: undefined, queryName: 'key', requirePlaceholder: 'PH' })];
  const cases: { why: string; query: string | undefined; headers?: HeaderList; ok: boolean }[] = [
    { why: 'placeholder as the parameter', query: 'key=PH', ok: true },
    { why: 'placeholder among other parameters', query: 'a=1&flag&key=xPHx', ok: true },
    { why: 'second copy of the parameter', query: 'key=real&key=PH', ok: true },
    { why: 'placeholder in a credential header instead', query: undefined, headers: [['Authorization', 'Bearer PH']], ok: true },
    { why: 'no query', query: undefined, ok: false },
    { why: 'empty query', query: '', ok: false },
    { why: 'parameter without a value', query: 'key', ok: false },
    { why: 'placeholder under another name', query: 'other=PH', ok: false },
    { why: 'placeholder in a non-credential header', query: 'key=real', headers: [['x-note', 'PH']], ok: false },
  ];
  for (const c of cases) {
    const plan = planInjection(b, { host: 'api.example.com', headers: c.headers ?? [], query: c.query });
    t.equal(plan.ok, c.ok, c.why);
    if (!plan.ok) t.equal(plan.reason, 'placeholder_required', c.why);
  }
});

t.test('findPlaceholderLeak in the query string', async (t) => {
  const ph = ['PH-1', 'PH-2'];
  const cases: { why: string; query: string | undefined; leak: boolean }[] = [
    { why: 'plain', query: 'key=PH-2', leak: true },
    { why: 'percent-encoded', query: 'key=PH%2D1', leak: true },
    { why: 'malformed escape: the raw text is searched', query: 'a=%E0%A4%A&key=PH-1', leak: true },
    { why: 'malformed escape, no placeholder', query: 'a=%zz', leak: false },
    { why: 'no placeholder', query: 'key=real', leak: false },
    { why: 'empty', query: '', leak: false },
    { why: 'none', query: undefined, leak: false },
  ];
  for (const c of cases) {
    const r = findPlaceholderLeak([['accept', '*/*']], ph, false, c.query);
    t.same(r, c.leak ? { reason: 'credential_reflected', header: null, message: r?.message } : null, c.why);
  }
});

t.test('renderHeaderValue: basic auth', async (t) => {
  const basic = { name: 'authorization', secret: 's', format: 'basic', template: '{secret}', binding: 'b' } as const;
  const b64 = (s: string) => `Basic ${Buffer.from(s, 'utf8').toString('base64')}`;
  t.equal(renderHeaderValue({ ...basic, username: undefined }, 'pw'), b64(':pw'), 'no username: empty user part');
  t.equal(renderHeaderValue({ ...basic, username: 'me' }, 'pw'), b64('me:pw'));
  t.equal(renderHeaderValue({ ...basic, username: 'me\nX-Evil: 1' }, 'pw'), null, 'an unsafe username is refused');
  t.equal(renderHeaderValue({ ...basic, username: 'me' }, 'p\0w'), null, 'NUL in the secret is refused');
});
