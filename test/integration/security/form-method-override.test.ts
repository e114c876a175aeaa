// Security case 3.05, the form body: Rack (Rails, GitLab) and PHP frameworks (Laravel, Symfony)
// apply the method a POST form names in `_method` — urlencoded, multipart, or (Rack) a POST without
// a Content-Type. Team alpha may GET and POST under /repos/** and may not DELETE. A POST form body
// naming DELETE is refused with 403 method_not_allowed: a small body (declared ≤ 64 KiB) before
// anything reaches the upstream, a larger or chunked one before its last bytes leave, so the
// upstream never holds a complete request. Forms that name nothing, or an allowed method, pass
// byte for byte, on the plain path and inside an intercepted tunnel, from raw sockets and from
// undici (URLSearchParams and FormData bodies).
import t from 'tap';
import { FormData, ProxyAgent, fetch } from 'undici';
import { startTestGateway } from '../../helpers/gateway-harness.ts';
import { collect, openTunnel, parseResponses, tlsOverTunnel } from '../../helpers/raw-client.ts';
import { makeTestCa } from '../../helpers/test-pki.ts';
import { startUpstream } from '../../helpers/upstream-server.ts';
import { API, ECHO, getPostNoDeleteRules, startSecurityFixture, type Route } from '../../helpers/security-fixture.ts';

const fx = await startSecurityFixture({ gateway: { alphaRules: [getPostNoDeleteRules(ECHO), getPostNoDeleteRules(API)].join('\n') } });
t.teardown(() => fx.close());

const URLENCODED = 'Content-Type: application/x-www-form-urlencoded\r\n';
const BOUNDARY = '----tollgate7MA4YWxkTrZu0gW';
const MULTIPART = `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\n`;

function multipart(fields: Array<[string, string]>): string {
  return fields.map(([n, v]) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${n}"\r\n\r\n${v}\r\n`).join('') + `--${BOUNDARY}--\r\n`;
}

function post(route: Route, contentType: string, body: string, extra = ''): string {
  return `${route.head('POST', '/repos/o/r')}${contentType}${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function chunked(route: Route, contentType: string, body: string): string {
  const half = Math.floor(body.length / 2);
  const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  return `${route.head('POST', '/repos/o/r')}${contentType}Transfer-Encoding: chunked\r\n\r\n${chunk(body.slice(0, half))}${chunk(body.slice(half))}0\r\n\r\n`;
}

const PAD = 'x'.repeat(100 * 1024);

for (const route of fx.routes) {
  t.test(`${route.name}: a small form naming DELETE is refused before anything reaches the upstream`, async (t) => {
    const cases: Array<[string, string]> = [
      ['urlencoded _method=DELETE', post(route, URLENCODED, 'title=x&_method=DELETE')],
      ['urlencoded, percent-encoded name and lower-case value', post(route, URLENCODED, '%5Fmethod=delete&a=1')],
      ['urlencoded, PHP reads "+_method" and ".method" as _method', post(route, URLENCODED, 'a=1&+_method=DELETE')],
      ['urlencoded, ".method"', post(route, URLENCODED, '.method=DELETE')],
      ['no Content-Type (Rack reads it as a form)', post(route, '', '_method=DELETE')],
      ['a Content-Type with parameters', post(route, 'Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n', '_method=DELETE')],
      ['multipart', post(route, MULTIPART, multipart([['title', 'x'], ['_method', 'DELETE']]))],
      ['multipart, name unquoted and the method second in the body', post(route, MULTIPART, `--${BOUNDARY}\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name=_method\r\n\r\nDELETE\r\n--${BOUNDARY}--\r\n`)],
      ['PUT, which no rule allows', post(route, URLENCODED, '_method=PUT')],
      ['urlencoded, Rack 2 reads "[_method]" as _method', post(route, URLENCODED, '[_method]=DELETE')],
      ['urlencoded, PHP ends a name at NUL', post(route, URLENCODED, '_method%00x=DELETE')],
      ['multipart, the type cut at a comma', post(route, `Content-Type: multipart/form-data, boundary=${BOUNDARY}\r\n`, multipart([['_method', 'DELETE']]))],
      ['multipart, a part after the closing delimiter (PHP reads on)', post(route, MULTIPART, `${multipart([['a', '1']])}${multipart([['_method', 'DELETE']])}`)],
      ['multipart, the last name= of a part (Rack)', post(route, MULTIPART, `--${BOUNDARY}\r\nContent-Disposition: form-data; name="a"; name="_method"\r\n\r\nDELETE\r\n--${BOUNDARY}--\r\n`)],
    ];
    for (const [what, bytes] of cases) {
      await t.test(what, async (t) => {
        const first = await fx.expectRefused(t, route, bytes, { statuses: [403], close: false });
        t.equal(first?.headers['x-tollgate-reason'], 'method_not_allowed', 'reason method_not_allowed');
        t.match(first?.body, /sent as POST but its form body asks the upstream to apply (DELETE|PUT)/, 'the body says which method was refused');
      });
    }
  });

  t.test(`${route.name}: a large or chunked form naming DELETE never reaches the upstream whole`, async (t) => {
    const cases: Array<[string, string]> = [
      ['100 KiB urlencoded, _method last', post(route, URLENCODED, `pad=${PAD}&_method=DELETE`)],
      ['100 KiB multipart, _method last', post(route, MULTIPART, multipart([['pad', PAD], ['_method', 'DELETE']]))],
      ['chunked urlencoded', chunked(route, URLENCODED, 'a=1&_method=DELETE')],
      ['chunked multipart', chunked(route, MULTIPART, multipart([['_method', 'DELETE']]))],
    ];
    for (const [what, bytes] of cases) {
      await t.test(what, async (t) => {
        const before = route.upstream.seen.length;
        const logged = fx.tg.exchanges().length;
        const r = await route.send(bytes, { waitMs: 3000 });
        const first = parseResponses(r.text)[0];
        t.equal(first?.status, 403, '403');
        t.equal(first?.headers['x-tollgate-reason'], 'method_not_allowed');
        t.ok(r.closed, 'the connection is closed (its body was not read to the end)');
        await new Promise((resolve) => setTimeout(resolve, 100));
        const whole = route.upstream.seen.slice(before).filter((s) => s.complete);
        t.same(whole.map((s) => `${s.method} ${s.url}`), [], 'no upstream request with this body ever completed');
        const ex = fx.tg.exchanges().slice(logged).filter((e) => e['kind'] === 'request');
        t.match(ex, [{ method: 'POST', decision: 'deny', reason: 'method_not_allowed', status: 403 }], 'the exchange is recorded as denied, method_not_allowed');
      });
    }
  });

  t.test(`${route.name}: forms naming nothing, or an allowed method, pass byte for byte`, async (t) => {
    const bodies: Array<[string, string, string]> = [
      ['urlencoded', URLENCODED, 'title=Fix+%26+ship&body=a%3Db&_methods=DELETE&x_method=DELETE'],
      ['urlencoded _method=GET', URLENCODED, 'a=1&_method=GET'],
      ['urlencoded _method=post (its own method)', URLENCODED, '_method=post'],
      ['an empty _method', URLENCODED, '_method=&a=1'],
      ['multipart', MULTIPART, multipart([['title', 'x'], ['file', 'DELETE me'], ['method', 'DELETE']])],
      ['100 KiB urlencoded', URLENCODED, `pad=${PAD}&b=2`],
      ['100 KiB multipart', MULTIPART, multipart([['pad', PAD]])],
      ['JSON (not a form)', 'Content-Type: application/json\r\n', '{"_method":"DELETE"}'],
      ['a binary body labelled as a form', URLENCODED, Buffer.alloc(80 * 1024, 0x41).toString('latin1')],
    ];
    for (const [what, type, body] of bodies) {
      const before = route.upstream.seen.length;
      const r = await route.send(post(route, type, body, 'Connection: close\r\n'), { waitMs: 5000 });
      t.equal(parseResponses(r.text)[0]?.status, 200, `${what}: 200`);
      const seen = route.upstream.seen.slice(before);
      t.equal(seen.length, 1, `${what}: forwarded once`);
      t.equal(seen[0]?.method, 'POST', `${what}: as a POST`);
      t.ok(seen[0]?.complete && seen[0].body.equals(Buffer.from(body, 'latin1')), `${what}: the body arrived byte for byte`);
    }
  });

  t.test(`${route.name}: a _method that is no method, or cannot be decoded, is a 400`, async (t) => {
    for (const body of ['_method=DEL%3BETE', '_method=%E0%A4%A', `_method=${'D'.repeat(300)}`]) {
      const first = await fx.expectRefused(t, route, post(route, URLENCODED, body), { statuses: [400], close: false });
      t.equal(first?.headers['x-tollgate-reason'], 'malformed_request', `${body.slice(0, 24)}: malformed_request`);
    }
    const twoTypes = await fx.expectRefused(t, route, post(route, `${URLENCODED}Content-Type: application/json\r\n`, '_method=DELETE'), { statuses: [400], close: false });
    t.match(twoTypes?.body, /more than one Content-Type/, 'a form POST with two Content-Type headers: 400');
    const formSecond = await fx.expectRefused(t, route, post(route, `Content-Type: application/json\r\n${URLENCODED}`, '_method=DELETE'), { statuses: [400], close: false });
    t.match(formSecond?.body, /more than one Content-Type/, 'the form type second: 400 too');
    for (const [what, type] of [['no boundary', 'multipart/form-data'], ['two boundaries', 'multipart/form-data; boundary=a; boundary=b']]) {
      const first = await fx.expectRefused(t, route, post(route, `Content-Type: ${type}\r\n`, '_method=DELETE'), { statuses: [400], close: false });
      t.match(first?.body, /no boundary that Tollgate and the upstream would read alike/, `multipart with ${what}: 400, says why`);
    }
  });
}

t.test('a host whose requests are AWS-signed (the body read whole for signing) is checked all the same', async (t) => {
  const pki = await makeTestCa();
  const up = await startUpstream({ tls: await pki.issue(['signed.test']) });
  const tg = await startTestGateway({
    upstreams: { 'signed.test': up.port },
    upstreamCaPem: pki.caPem,
    alphaRules: getPostNoDeleteRules('signed.test'),
    alphaCredentials: '  - { host: signed.test, aws: { secret: aws-x, region: us-east-1, service: execute-api } }',
    files: { 'secrets/aws-x': 'AKIDEXAMPLE:wJalrXUtnFEMIbPxRfiCYEXAMPLEKEY\n' },
  });
  t.teardown(async () => { await tg.stop(); await up.close(); });
  for (const body of [`pad=${PAD}&_method=DELETE`, `pad=${PAD}&b=2`]) {
    const s = await tlsOverTunnel(await openTunnel(tg.proxyPort, 'signed.test:443', { 'Proxy-Authorization': tg.proxyAuth }), tg.caPem, 'signed.test');
    const r = await collect(s, `POST /repos/o/r HTTP/1.1\r\nHost: signed.test\r\n${URLENCODED}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`, { waitMs: 4000, until: (x) => parseResponses(x).length > 0 });
    s.destroy();
    const refused = body.endsWith('DELETE');
    t.equal(parseResponses(r.text)[0]?.status, refused ? 403 : 200, refused ? 'the form naming DELETE: 403' : 'the form naming nothing: 200');
  }
  t.same(up.seen.filter((x) => x.complete).map((x) => x.body.subarray(-3).toString()), ['b=2'], 'only the form naming nothing reached the upstream, signed');
  t.match(String(up.seen.at(-1)?.headers['authorization']), /^AWS4-HMAC-SHA256 /);
});

t.test('real clients: undici posting URLSearchParams and FormData naming DELETE is refused', async (t) => {
  const agent = new ProxyAgent({ uri: fx.tg.proxyUrl, requestTls: { ca: fx.tg.caPem } });
  t.teardown(() => agent.close());
  const before = fx.api.seen.length;
  const form = new FormData();
  form.append('title', 'x');
  form.append('_method', 'DELETE');
  for (const body of [new URLSearchParams({ title: 'x', _method: 'DELETE' }), form]) {
    // fetch sends FormData as multipart/form-data with a boundary of its own
    const res = await fetch(`https://${API}/repos/o/r`, { method: 'POST', body, dispatcher: agent });
    t.equal(res.status, 403, `${body.constructor.name}: 403`);
    t.equal(res.headers.get('x-tollgate-reason'), 'method_not_allowed');
    await res.arrayBuffer();
  }
  const ok = await fetch(`https://${API}/repos/o/r`, { method: 'POST', body: new URLSearchParams({ title: 'x' }), dispatcher: agent });
  t.equal(ok.status, 200, 'the same form without _method is allowed');
  await ok.arrayBuffer();
  t.same(fx.api.seen.slice(before).filter((s) => s.complete).map((s) => s.body.toString()), ['title=x'], 'only the form without _method reached the upstream');
});
