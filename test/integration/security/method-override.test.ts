// Security case 3.05 (../shared/security-cases.md), method override headers and parameters: team
// alpha may GET and POST under /repos/** and may not DELETE. A POST that asks the upstream to apply
// DELETE (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override, `?_method=DELETE`) is refused
// with 403 method_not_allowed and nothing reaches the upstream, on the plain path and inside an
// intercepted tunnel; an override naming an allowed method is forwarded as sent; a value that is no
// method is a 400. Also: a lower-case request method is a 400, and TRACE/PURGE/PROPFIND, which no
// rule names, are refused.
import t from 'tap';
import { request, ProxyAgent } from 'undici';
import { parseResponses } from '../../helpers/raw-client.ts';
import { API, ECHO, getPostNoDeleteRules, startSecurityFixture } from '../../helpers/security-fixture.ts';

const fx = await startSecurityFixture({ gateway: { alphaRules: [getPostNoDeleteRules(ECHO), getPostNoDeleteRules(API)].join('\n') } });
t.teardown(() => fx.close());

const OVERRIDES: Array<[string, string, string]> = [
  // [what, extra header line, query]
  ['X-HTTP-Method-Override: DELETE', 'X-HTTP-Method-Override: DELETE\r\n', ''],
  ['X-HTTP-Method: DELETE', 'X-HTTP-Method: DELETE\r\n', ''],
  ['X-Method-Override: delete', 'X-Method-Override: delete\r\n', ''],
  ['a list naming DELETE second', 'X-HTTP-Method-Override: GET, DELETE\r\n', ''],
  ['?_method=DELETE', '', '?_method=DELETE'],
  ['?%5Fmethod=delete among other parameters', '', '?page=2&%5Fmethod=delete'],
  ['?[_method]=DELETE (Rack 2 drops the brackets)', '', '?%5B_method%5D=DELETE'],
  ['?_method%00x=DELETE (PHP ends the name at NUL)', '', '?_method%00x=DELETE'],
];

for (const route of fx.routes) {
  t.test(`${route.name}: a POST that asks for DELETE is refused and never forwarded`, async (t) => {
    for (const [what, header, query] of OVERRIDES) {
      await t.test(what, async (t) => {
        const first = await fx.expectRefused(t, route, `${route.head('POST', `/repos/o/r${query}`)}${header}Content-Length: 2\r\n\r\n{}`, { statuses: [403], close: false });
        t.equal(first?.headers['x-tollgate-reason'], 'method_not_allowed', 'reason method_not_allowed');
        t.match(first?.headers['x-tollgate-rule'], /^policies\/alpha\.yaml:\d+$/, 'names the rule that denies DELETE');
        t.match(first?.body, /sent as POST but asks the upstream to apply DELETE/, 'the body says which method was refused and why');
      });
    }
  });

  t.test(`${route.name}: an override naming an allowed method, or the request's own, is forwarded as sent`, async (t) => {
    for (const [header, query] of [['X-HTTP-Method-Override: GET\r\n', ''], ['X-HTTP-Method: post\r\n', ''], ['', '?_method=GET']] as const) {
      const before = route.upstream.seen.length;
      const r = await route.send(`${route.head('POST', `/repos/o/r${query}`)}${header}Content-Length: 2\r\nConnection: close\r\n\r\n{}`, { waitMs: 3000 });
      t.equal(parseResponses(r.text)[0]?.status, 200, `${header.trim() || query}: 200`);
      const seen = route.upstream.seen.slice(before);
      t.equal(seen.length, 1, 'forwarded once');
      t.equal(seen[0]?.method, 'POST', 'as a POST');
      if (header) t.ok(seen[0]?.rawHeaders.includes(header.split(':')[0] as string), 'with its override header');
      else t.equal(seen[0]?.url, `/repos/o/r${query}`, 'with its query');
    }
  });

  t.test(`${route.name}: an override that is no method is a 400, never forwarded`, async (t) => {
    const first = await fx.expectRefused(t, route, `${route.head('POST', '/repos/o/r')}X-HTTP-Method-Override: DEL;ETE\r\nContent-Length: 0\r\n\r\n`, { statuses: [400], close: false });
    t.equal(first?.headers['x-tollgate-reason'], 'malformed_request');
    const q = await fx.expectRefused(t, route, `${route.head('POST', '/repos/o/r?_method=%E0%A4%A')}Content-Length: 0\r\n\r\n`, { statuses: [400], close: false });
    t.equal(q?.headers['x-tollgate-reason'], 'malformed_request');
  });

  t.test(`${route.name}: methods no rule names are refused; a lower-case method is a 400`, async (t) => {
    for (const m of ['TRACE', 'PURGE', 'PROPFIND', 'DELETE']) {
      const first = await fx.expectRefused(t, route, `${route.head(m, '/repos/o/r')}\r\n`, { statuses: [403], close: false });
      t.equal(first?.headers['x-tollgate-reason'], 'method_not_allowed', `${m}: method_not_allowed`);
    }
    await fx.expectRefused(t, route, `${route.head('get', '/repos/o/r')}\r\n`, { statuses: [400] });
  });
}

t.test('a real client (undici through the proxy) sending X-HTTP-Method-Override: DELETE is refused', async (t) => {
  const agent = new ProxyAgent({ uri: fx.tg.proxyUrl, requestTls: { ca: fx.tg.caPem } });
  t.teardown(() => agent.close());
  const before = fx.api.seen.length;
  const res = await request(`https://${API}/repos/o/r`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-http-method-override': 'DELETE' }, dispatcher: agent });
  t.equal(res.statusCode, 403);
  t.equal(res.headers['x-tollgate-reason'], 'method_not_allowed');
  await res.body.dump();
  const ok = await request(`https://${API}/repos/o/r`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, dispatcher: agent });
  t.equal(ok.statusCode, 200, 'the same POST without the override is allowed');
  await ok.body.dump();
  t.same(fx.api.seen.slice(before).map((s) => s.method), ['POST'], 'only the POST without the override reached the upstream');
});
