// Security cases 4.01–4.03 and 4.05 at the plan level: client credentials are removed (every
// header the provider accepts a key in), injection is by secret name, placeholders fail closed.
import t from 'tap';
import { findPlaceholderLeak, planInjection, renderHeaderValue, renderQueryPair } from '../../../src/credentials/plan-injection.ts';
import type { CredentialBindingRef } from '../../../src/policy/types.ts';
import { decideLine, loadBase } from '../../fixtures/policies/load-fixture.ts';

const ref = (over: Partial<CredentialBindingRef>): CredentialBindingRef => ({
  name: 'b', id: 'policies/x.yaml:1', kind: 'bearer', secret: 's', host: 'h', project: undefined, headerName: 'authorization',
  template: 'Bearer {secret}', username: undefined, queryName: undefined, awsRegion: undefined, awsService: undefined, requirePlaceholder: undefined, ...over,
});

t.test('4.02 Anthropic: x-api-key and authorization are both removed, one x-api-key set', async (t) => {
  const set = loadBase();
  const d = decideLine(set, { team: 'alpha' }, 'POST https://api.anthropic.com/v1/messages');
  const plan = planInjection(d.credentials, {
    host: 'api.anthropic.com',
    headers: [['x-api-key', 'tollgate-placeholder'], ['X-Api-Key', 'agent2'], ['Authorization', 'Bearer agent3'], ['Proxy-Authorization', 'Bearer TOK_A']],
  });
  if (!plan.ok) throw new Error(plan.message);
  t.same([...plan.removeHeaders].sort(), ['authorization', 'proxy-authorization', 'x-api-key']);
  t.same(plan.setHeaders, [{ name: 'x-api-key', secret: 'ant-key', format: 'template', template: '{secret}', username: undefined, binding: 'ant-key' }]);
  t.equal(plan.aws, null);
});

t.test('4.02 GitHub: every Authorization copy removed, one Bearer set', async (t) => {
  const plan = planInjection([ref({ name: 'gh-token', secret: 'gh-token' })], {
    host: 'api.github.com',
    headers: [['Authorization', 'Bearer agent-fake'], ['authorization', 'token x'], ['AUTHORIZATION', 'Basic Zm9vOmJhcg==']],
  });
  if (!plan.ok) throw new Error('plan');
  t.same([...plan.removeHeaders].sort(), ['authorization', 'proxy-authorization']);
  t.equal(plan.setHeaders.length, 1);
  t.equal(renderHeaderValue(plan.setHeaders[0]!, 'CANARY_GH'), 'Bearer CANARY_GH');
});

t.test('4.01 no binding: only the proxy credentials are removed', async (t) => {
  const plan = planInjection([], { host: 'echo.allowed.test', headers: [['Authorization', 'Bearer mine']] });
  if (!plan.ok) throw new Error('plan');
  t.same(plan.removeHeaders, ['proxy-authorization']);
  t.same(plan.setHeaders, []);
});

t.test('header, basic, query and aws bindings', async (t) => {
  const plan = planInjection([
    ref({ name: 'pd', kind: 'header', secret: 'pd', headerName: 'authorization', template: 'Token token={secret}' }),
    ref({ name: 'dd', kind: 'header', secret: 'dd', headerName: 'dd-api-key', template: '{secret}' }),
    ref({ name: 'q', kind: 'query', secret: 'qk', headerName: undefined, template: undefined, queryName: 'key' }),
  ], { host: 'api.example.com', headers: [] });
  if (!plan.ok) throw new Error('plan');
  t.same([...plan.removeHeaders].sort(), ['authorization', 'dd-api-key', 'proxy-authorization']);
  t.same(plan.removeQuery, ['key']);
  t.equal(renderHeaderValue(plan.setHeaders[0]!, 'abc'), 'Token token=abc');
  t.equal(renderQueryPair(plan.setQuery[0]!, 'a b&c'), 'key=a%20b%26c');
  const basic = planInjection([ref({ name: 'zd', kind: 'basic', secret: 'zd', template: undefined, username: 'support@acme.example/token' })], { host: 'acme.zendesk.com', headers: [] });
  if (!basic.ok) throw new Error('plan');
  t.equal(renderHeaderValue(basic.setHeaders[0]!, 'pw'), `Basic ${Buffer.from('support@acme.example/token:pw').toString('base64')}`);
  const aws = planInjection([ref({ name: 'aws', kind: 'aws', secret: 'aws-prod', headerName: undefined, template: undefined })], { host: 's3.eu-west-1.amazonaws.com', headers: [] });
  if (!aws.ok) throw new Error('plan');
  t.same(aws.aws, { secret: 'aws-prod', region: undefined, service: undefined, binding: 'aws' });
  t.ok(aws.removeHeaders.includes('x-amz-security-token'));
  t.same(aws.setHeaders, []);
});

t.test('a secret with CR/LF is never rendered into a header', async (t) => {
  t.equal(renderHeaderValue({ name: 'authorization', secret: 's', format: 'template', template: 'Bearer {secret}', username: undefined, binding: 'b' }, 'x\r\nX-Injected: 1'), null);
  t.equal(renderHeaderValue({ name: 'authorization', secret: 's', format: 'template', template: '{secret}', username: undefined, binding: 'b' }, '$&$1'), '$&$1', 'replacement patterns are literal');
});

t.test('require_placeholder: inject only when the client sent it', async (t) => {
  const b = [ref({ name: 'ant', kind: 'header', headerName: 'x-api-key', template: '{secret}', requirePlaceholder: 'tollgate-placeholder' })];
  t.equal(planInjection(b, { host: 'api.anthropic.com', headers: [['x-api-key', 'tollgate-placeholder']] }).ok, true);
  t.equal(planInjection(b, { host: 'api.anthropic.com', headers: [['authorization', 'Bearer tollgate-placeholder']] }).ok, true, 'apiKeyHelper fills Authorization');
  const missing = planInjection(b, { host: 'api.anthropic.com', headers: [['x-api-key', 'sk-ant-personal']] });
  t.equal(missing.ok, false);
  if (!missing.ok) {
    t.equal(missing.reason, 'placeholder_required');
    t.notMatch(missing.message, /sk-ant-personal/, 'never echoes the client key');
  }
  t.equal(planInjection(b, { host: 'api.anthropic.com', headers: [['x-other', 'tollgate-placeholder']] }).ok, false, 'only credential headers count');
});

t.test('findPlaceholderLeak: a placeholder bound for an unbound host is refused', async (t) => {
  const ph = ['tollgate-placeholder'];
  t.same(findPlaceholderLeak([['x-api-key', 'tollgate-placeholder']], ph, true), null, 'bound host: fine');
  t.equal(findPlaceholderLeak([['X-Api-Key', 'tollgate-placeholder']], ph, false)?.reason, 'credential_reflected');
  t.equal(findPlaceholderLeak([['Authorization', 'Bearer tollgate-placeholder']], ph, false)?.header, 'authorization');
  t.equal(findPlaceholderLeak([], ph, false, 'key=tollgate%2Dplaceholder')?.reason, 'credential_reflected');
  t.same(findPlaceholderLeak([['authorization', 'Bearer real']], ph, false), null);
});

t.test('a bound host on a path no binding covers: key headers still removed, placeholder may travel', async (t) => {
  const set = loadBase();
  const d = decideLine(set, { team: 'alpha' }, 'GET https://api.github.com/user');
  t.equal(d.hostBound, true);
  const sre = (await import('../../../src/config/policy-source.ts')).loadOrgAndPolicies({ orgFile: new URL('../../../org.yaml', import.meta.url).pathname });
  if (!sre.ok) throw new Error('load');
  const tele = decideLine(sre.bundle, { team: 'sre' }, 'POST https://api.anthropic.com/api/event_logging/batch');
  t.same(tele.credentials, []);
  t.equal(tele.hostBound, true);
  const headers: Array<[string, string]> = [['x-api-key', 'tollgate-placeholder'], ['authorization', 'Bearer tollgate-placeholder']];
  t.same(findPlaceholderLeak(headers, sre.bundle.placeholders, tele.hostBound), null);
  const plan = planInjection(tele.credentials, { host: 'api.anthropic.com', headers, hostBound: tele.hostBound });
  if (!plan.ok) throw new Error('plan');
  t.same([...plan.removeHeaders].sort(), ['authorization', 'proxy-authorization', 'x-api-key']);
  t.same(plan.setHeaders, []);
  const echo = decideLine(set, { team: 'alpha' }, 'GET https://echo.allowed.test/');
  t.equal(echo.hostBound, false);
  t.equal(findPlaceholderLeak(headers, set.placeholders, echo.hostBound)?.reason, 'credential_reflected');
});
