// Security cases 1.08, 1.10, 1.11 and 1.12 (../shared/security-cases.md): pipelining, Expect:
// 100-continue, oversized header sections, CR/LF in decoded values. Raw bytes on the plain path and
// inside an intercepted tunnel.
import t from 'tap';
import { collect, hasResponses, parseResponses, rawSend } from '../../helpers/raw-client.ts';
import { ECHO, EVIL, headerPairs, settle, startSecurityFixture } from '../../helpers/security-fixture.ts';

const fx = await startSecurityFixture();
t.teardown(() => fx.close());

const BUG_TUNNEL_REFUSAL_LOST: string | undefined = undefined; // fixed in proxy-server.ts (closing connections)
const BUG_PIPELINED_AFTER_REFUSAL: string | undefined = undefined; // fixed in proxy-server.ts (closing connections)

/** The `url` the echo upstream reports in a JSON response body. */
function echoedUrl(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { url?: string }).url;
  } catch {
    return undefined;
  }
}

for (const route of fx.routes) {
  t.test(`[${route.name}] 1.08 pipelined requests are answered in order`, async (t) => {
    t.test('three allowed requests in one write', async (t) => {
      const before = route.upstream.seen.length;
      const bytes = [1, 2, 3].map((i) => `${route.head('GET', `/p${i}`)}\r\n`).join('');
      const r = await route.send(bytes, { waitMs: 3000, until: hasResponses(3) });
      const res = parseResponses(r.text);
      t.same(res.map((x) => x.status), [200, 200, 200]);
      t.same(res.map((x) => echoedUrl(x.body)), ['/p1', '/p2', '/p3'], 'each response belongs to its request, in order');
      t.same(route.upstream.seen.slice(before).map((x) => x.url).sort(), ['/p1', '/p2', '/p3']);
    });

    t.test('allowed, denied (EVIL), allowed in one write', async (t) => {
      const before = route.upstream.seen.length;
      const evilBefore = fx.snapshot(fx.evil);
      const evilReq = route.name === 'plain'
        ? `GET http://${EVIL}/p2 HTTP/1.1\r\nHost: ${EVIL}\r\n${fx.authLine}\r\n`
        : `GET http://${EVIL}/p2 HTTP/1.1\r\nHost: ${EVIL}\r\n\r\n`;
      const bytes = `${route.head('GET', '/q1')}\r\n${evilReq}${route.head('GET', '/q3')}\r\n`;
      const r = await route.send(bytes, { waitMs: 3000, until: hasResponses(3) });
      const res = parseResponses(r.text);
      t.equal(res[0]?.status, 200);
      t.equal(echoedUrl(res[0]?.body ?? ''), '/q1');
      const expected = route.name === 'plain' ? [403] : [421, 403];
      t.ok(expected.includes(res[1]?.status ?? 0), `the EVIL request is refused (${res[1]?.status})`);
      if (res[1]?.status === 403) t.equal(res[1]?.headers['x-tollgate-reason'], 'host_not_allowed');
      if (res.length > 2) {
        t.equal(res[2]?.status, 200, 'the third request is answered after the refusal');
        t.equal(echoedUrl(res[2]?.body ?? ''), '/q3');
      } else {
        t.ok(r.closed, 'or the connection was closed after the refusal');
      }
      await settle();
      fx.assertNothingForwarded(t, fx.evil, evilBefore, 'EVIL');
      t.equal(fx.evil.tcpConnections, evilBefore.tcpConnections, 'EVIL accepted no TCP connection');
      t.notOk(route.upstream.seen.slice(before).some((x) => x.url === '/p2'), 'the denied request reached no upstream');
    });

    t.test('a request pipelined after a 400 refusal is never processed', async (t) => {
      const before = route.upstream.seen.length;
      // Host header that does not match the target → 400 + close; a valid request follows in the same write.
      const bad = `${route.name === 'plain' ? `GET http://${ECHO}/bad HTTP/1.1\r\nHost: other.allowed.test\r\n${fx.authLine}` : 'GET /bad HTTP/1.1\r\nHost: other.allowed.test\r\n'}\r\n`;
      const r = await route.send(`${bad}${route.head('GET', '/after-refusal')}\r\n`, { waitMs: 1500 });
      const res = parseResponses(r.text);
      t.ok(res[0] && [400, 421].includes(res[0].status), `refused with ${res[0]?.status}`);
      t.equal(res.length, 1, 'nothing answered after the refusal', { todo: BUG_PIPELINED_AFTER_REFUSAL });
      t.ok(r.closed, 'closed');
      await settle(100);
      t.same(route.upstream.seen.slice(before).map((x) => x.url), [], 'NOFWD: neither request reached the upstream', { todo: BUG_PIPELINED_AFTER_REFUSAL });
    });
  });

  t.test(`[${route.name}] 1.10 Expect: 100-continue`, async (t) => {
    t.test('allowed: 100 Continue, then the final response; the body is forwarded once', async (t) => {
      const before = route.upstream.seen.length;
      const sock = await route.open();
      const first = await collect(sock, `${route.head('POST', '/upload')}Content-Length: 5\r\nExpect: 100-continue\r\n\r\n`, { waitMs: 2000, until: (x) => x.includes('\r\n\r\n'), destroyOnTimeout: false });
      t.match(first.text, /^HTTP\/1\.1 100 Continue\r\n/, 'the client is told to continue');
      t.equal(route.upstream.seen.length, before, 'nothing was sent upstream before the body');
      const rest = await collect(sock, 'hello', { waitMs: 3000, until: hasResponses(1) });
      sock.destroy();
      const res = parseResponses(rest.text);
      t.equal(res[0]?.status, 200);
      const fwd = route.upstream.seen.slice(before);
      t.equal(fwd.length, 1, 'one request upstream');
      t.equal(fwd[0]?.body.toString(), 'hello', 'the body is forwarded once');
      t.notOk(headerPairs(fwd[0]?.rawHeaders ?? []).some(([n]) => n === 'expect'), 'Expect is hop-by-hop here: the gateway already answered it');
    });

    t.test('an unknown expectation gets 417 and nothing is forwarded', async (t) => {
      await fx.expectRefused(t, route, `${route.head('POST', '/upload')}Content-Length: 5\r\nExpect: 100-continue-please\r\n\r\nhello`, { statuses: [417], close: false });
    });

    t.test('two Expect lines get 417 (or 400)', async (t) => {
      await fx.expectRefused(t, route, `${route.head('POST', '/upload')}Content-Length: 5\r\nExpect: 100-continue\r\nExpect: x\r\n\r\nhello`, { statuses: [417, 400], close: false });
    });
  });

  t.test(`[${route.name}] 1.11 oversized and excessive headers`, async (t) => {
    const cases: Array<[string, string]> = [
      ['a 17 KiB header', `${route.head('GET', '/big')}X-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`],
      ['3,000 small headers', `${route.head('GET', '/many')}${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`],
      ['a 64 KiB request target', `${route.head('GET', `/${'p'.repeat(64 * 1024)}`)}\r\n`],
      ['a 70 KB Accept-Language', `${route.head('GET', '/lang')}Accept-Language: ${'en-GB,'.repeat(70_000 / 6)}en\r\n\r\n`],
    ];
    for (const [name, bytes] of cases) {
      t.test(name, async (t) => {
        // Over one TLS record (16 KiB) of header bytes after the limit, the tunnel's refusal is lost (see BUG_TUNNEL_REFUSAL_LOST).
        const lost = route.name === 'tunnel' && bytes.length > 24 * 1024;
        await fx.expectRefused(t, route, bytes, { statuses: [431, 414, 400], waitMs: 3000, ...(lost ? { todo: { status: BUG_TUNNEL_REFUSAL_LOST, single: BUG_TUNNEL_REFUSAL_LOST } } : {}) });
      });
    }
    t.test('the gateway still serves the next client', async (t) => {
      const r = await route.send(`${route.head('GET', '/after-big')}Connection: close\r\n\r\n`, { waitMs: 3000 });
      t.equal(parseResponses(r.text)[0]?.status, 200);
    });
  });

  t.test(`[${route.name}] 1.12 CR/LF and control characters in decoded values`, async (t) => {
    t.test('%0d%0a in the path reaches the upstream still percent-encoded, or is refused', async (t) => {
      const before = route.upstream.seen.length;
      const r = await route.send(`${route.head('GET', '/a%0d%0aX-Injected:%201')}Connection: close\r\n\r\n`, { waitMs: 3000 });
      const status = parseResponses(r.text)[0]?.status;
      await settle();
      const fwd = route.upstream.seen.slice(before);
      if (status === 400) {
        t.same(fwd, [], 'refused: NOFWD');
      } else {
        t.equal(status, 200);
        t.equal(fwd.length, 1);
        t.match(fwd[0]?.url ?? '', /^\/a%0[dD]%0[aA]X-Injected:%201$/, 'percent-encoding kept verbatim (hex case aside)');
        t.notOk(fwd[0]?.headers['x-injected'], 'no injected header upstream');
      }
    });
    t.test('%00 (NUL) in the path is refused', async (t) => {
      await fx.expectRefused(t, route, `${route.head('GET', '/a%00b')}\r\n`, { close: false });
    });
    t.test('a raw CR in the request target is refused', async (t) => {
      await fx.expectRefused(t, route, `${route.head('GET', '/a\rX-Injected: 1')}\r\n`);
    });
    t.test('%0d%0a in the query is forwarded encoded, never as a header', async (t) => {
      const before = route.upstream.seen.length;
      const r = await route.send(`${route.head('GET', '/q?x=%0d%0aX-Injected:%201')}Connection: close\r\n\r\n`, { waitMs: 3000 });
      const status = parseResponses(r.text)[0]?.status;
      await settle();
      const fwd = route.upstream.seen.slice(before);
      t.ok(status === 200 || status === 400, `answered ${status}`);
      for (const f of fwd) t.notOk(f.headers['x-injected'], 'no injected header upstream');
    });
    t.test('the gateway still serves the next request', async (t) => {
      const r = await route.send(`${route.head('GET', '/after-crlf')}Connection: close\r\n\r\n`, { waitMs: 3000 });
      t.equal(parseResponses(r.text)[0]?.status, 200);
    });
  });
}

t.test('[plain] 1.10 a denied request with Expect gets its 403 without a 100 Continue', async (t) => {
  const r = await rawSend(fx.tg.proxyPort, `POST http://${EVIL}/upload HTTP/1.1\r\nHost: ${EVIL}\r\n${fx.authLine}Content-Length: 1048576\r\nExpect: 100-continue\r\n\r\n`, { waitMs: 2000, until: hasResponses(1) });
  const res = parseResponses(r.text);
  t.equal(res[0]?.status, 403, 'the first thing the client reads is the final 403');
  t.equal(res[0]?.headers['x-tollgate-reason'], 'host_not_allowed');
  t.equal(fx.evil.tcpConnections, 0, 'NOFWD: EVIL accepted nothing');
});

t.test('[plain] 1.10 an unauthenticated request with Expect gets 407 without a 100 Continue', async (t) => {
  const before = fx.snapshot(fx.echo);
  const r = await rawSend(fx.tg.proxyPort, `POST http://${ECHO}/upload HTTP/1.1\r\nHost: ${ECHO}\r\nProxy-Authorization: Basic ${Buffer.from('alpha:tg_not-a-real-token').toString('base64')}\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n`, { waitMs: 2000, until: hasResponses(1) });
  const res = parseResponses(r.text);
  t.equal(res[0]?.status, 407, 'the first thing the client reads is the final 407');
  t.ok(res[0]?.headers['proxy-authenticate'], 'with Proxy-Authenticate');
  await settle();
  fx.assertNothingForwarded(t, fx.echo, before, 'ECHO');
});

t.test('[tunnel] 1.10 inside a denied (readable) tunnel, Expect gets the 403 without a 100 Continue', async (t) => {
  const sock = await fx.intercepted(EVIL);
  const r = await collect(sock, `POST /upload HTTP/1.1\r\nHost: ${EVIL}\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n`, { waitMs: 2000, until: hasResponses(1) });
  sock.destroy();
  const res = parseResponses(r.text);
  t.equal(res[0]?.status, 403);
  t.equal(fx.evil.tcpConnections, 0, 'NOFWD: EVIL accepted nothing');
});

t.test('1.12 CONNECT with %0d%0a in the authority is refused', async (t) => {
  const r = await rawSend(fx.tg.proxyPort, `CONNECT ${ECHO}%0d%0aX:%20y:443 HTTP/1.1\r\nHost: ${ECHO}:443\r\n${fx.authLine}\r\n`, { waitMs: 1500 });
  t.match(r.text, /^HTTP\/1\.1 400 /);
  t.ok(r.closed);
});

t.test('1.12 a proxy user name with CR/LF is refused without a crash', async (t) => {
  const r = await rawSend(fx.tg.proxyPort, `GET http://${ECHO}/x HTTP/1.1\r\nHost: ${ECHO}\r\nProxy-Authorization: Basic ${Buffer.from(`alpha\r\nX-Injected: 1:${fx.token}`).toString('base64')}\r\n\r\n`, { waitMs: 1500, until: hasResponses(1) });
  const status = parseResponses(r.text)[0]?.status;
  t.ok(status === 407 || status === 400, `refused (${status})`);
  t.notMatch(r.text, /\r\nX-Injected/i, 'nothing injected into the response head');
  const ok = await rawSend(fx.tg.proxyPort, `${fx.plain.head('GET', '/alive')}Connection: close\r\n\r\n`, { waitMs: 3000 });
  t.equal(parseResponses(ok.text)[0]?.status, 200, 'the gateway is still up');
});

t.test('CANARY-CLEAN', async (t) => fx.assertCanaryClean(t));
