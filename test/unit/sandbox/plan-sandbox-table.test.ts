// planSandbox and proxyEnvironment over tables: proxy URLs in every accepted and refused shape,
// listen ports out of range, extra variables, and NO_PROXY when the caller sets it.
import t from 'tap';
import { parseProxyUrl, planSandbox, SandboxPlanError } from '../../../src/sandbox/plan-sandbox.ts';
import { CA_VARIABLES, NO_PROXY_VARIABLES, PROXY_VARIABLES, proxyEnvironment } from '../../../src/sandbox/proxy-environment.ts';

const tools = { unshare: '/usr/bin/unshare', nsenter: '/usr/bin/nsenter', ip: '/usr/sbin/ip', node: '/usr/bin/node', sh: '/bin/sh' };
const base = { command: ['true'], proxyUrl: 'http://gw.internal:3128', caBundlePath: '/ca.pem', env: {}, tools, holderScript: '/holder.mjs' };

t.test('parseProxyUrl: endpoint and credentials', async (t) => {
  const cases: [string, { host: string; port: number }, string][] = [
    ['http://gw.internal', { host: 'gw.internal', port: 80 }, ''],
    ['http://gw.internal:3128', { host: 'gw.internal', port: 3128 }, ''],
    ['http://sre:tok@gw:1', { host: 'gw', port: 1 }, 'sre:tok@'],
    ['http://tok@gw:1', { host: 'gw', port: 1 }, 'tok:@'],
    ['http://:pw@gw:1', { host: 'gw', port: 1 }, ':pw@'],
    ['http://[::1]:3128', { host: '::1', port: 3128 }, ''],
  ];
  for (const [url, endpoint, auth] of cases) t.same(parseProxyUrl(url), { endpoint, auth }, url);
  const refused: [string, RegExp][] = [['not a url', /not a URL/], ['https://gw:3128', /must start with http:\/\/ \(got https:\/\/\)/], ['socks5://gw:1080', /got socks5:\/\//]];
  for (const [url, message] of refused) t.throws(() => parseProxyUrl(url), { name: 'SandboxPlanError', message }, url);
});

t.test('the listen port must be a TCP port', async (t) => {
  for (const listenPort of [0, 65536, 1.5, -1]) {
    t.throws(() => planSandbox({ ...base, listenPort }), new SandboxPlanError(`listen port ${listenPort} is out of range`), String(listenPort));
  }
  t.equal(planSandbox({ ...base, listenPort: 65535 }).innerProxyUrl, 'http://127.0.0.1:65535');
  t.equal(planSandbox(base).innerProxyUrl, 'http://127.0.0.1:3128', 'without credentials, none in the inner URL');
});

t.test('extra variables are set last, over the proxy ones', async (t) => {
  const plan = planSandbox({ ...base, mode: 'none', extraEnv: { TOLLGATE_AGENT: 'bot', HTTPS_PROXY: 'http://override:1' } });
  t.equal(plan.env['TOLLGATE_AGENT'], 'bot');
  t.equal(plan.env['HTTPS_PROXY'], 'http://override:1');
  t.equal(plan.env['HTTP_PROXY'], 'http://gw.internal:3128');
});

t.test('proxyEnvironment: NO_PROXY only when the caller sets it', async (t) => {
  const names = (noProxy?: string) => proxyEnvironment({ proxyUrl: 'http://p:1', caBundlePath: '/ca', noProxy }).map(([n]) => n);
  t.same(names(), [...PROXY_VARIABLES, ...CA_VARIABLES]);
  t.same(names('localhost'), [...PROXY_VARIABLES, ...NO_PROXY_VARIABLES, ...CA_VARIABLES]);
  t.same(proxyEnvironment({ proxyUrl: 'http://p:1', caBundlePath: '/ca', noProxy: '' }).filter(([n]) => (NO_PROXY_VARIABLES as readonly string[]).includes(n)).map(([, v]) => v), NO_PROXY_VARIABLES.map(() => ''), 'an empty NO_PROXY is still set');
});
