// Security cases 1.01–1.03 (../shared/security-cases.md): CL.TE / TE.CL conflicts, duplicate and
// non-decimal Content-Length, Transfer-Encoding obfuscation. Raw bytes only, on the plain-proxy
// path and inside an intercepted CONNECT tunnel; every refusal is 400 + close and NOFWD.
import t from 'tap';
import { parseResponses } from '../../helpers/raw-client.ts';
import { EVIL, settle, startSecurityFixture } from '../../helpers/security-fixture.ts';

const fx = await startSecurityFixture();
t.teardown(() => fx.close());

/**
 * The request a smuggler hides after the body: to the route's own (allowed) host, with valid
 * credentials, so that only correct framing — not policy — keeps it from being forwarded.
 */
function smuggled(route: typeof fx.plain): string {
  return `${route.head('GET', '/smuggled')}\r\n`;
}
/** The same, addressed to EVIL (security case 1.01 verbatim; denied by policy as well). */
function smuggledToEvil(route: typeof fx.plain): string {
  return route.name === 'plain'
    ? `GET http://${EVIL}/smuggled HTTP/1.1\r\nHost: ${EVIL}\r\n${fx.authLine}\r\n`
    : `GET http://${EVIL}/smuggled HTTP/1.1\r\nHost: ${EVIL}\r\n\r\n`;
}

// Known bugs in src/proxy/proxy-server.ts (owned by the lead), asserted as TODO where they show:
const BUG_SECOND_RESPONSE: string | undefined = undefined; // fixed in proxy-server.ts (closing connections)
const BUG_PIPELINED_AFTER_REFUSAL: string | undefined = undefined; // fixed in proxy-server.ts (closing connections)

for (const route of fx.routes) {
  t.test(`[${route.name}] 1.01 CL.TE / TE.CL`, async (t) => {
    const start = [fx.echo, fx.api, fx.evil].map((u) => u.seen.length);
    t.test('Content-Length before Transfer-Encoding, a request hidden after the last chunk', async (t) => {
      await fx.expectRefused(t, route, `${route.head('POST', '/a')}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled(route)}`);
    });
    t.test('the same with the hidden request addressed to EVIL (case text verbatim)', async (t) => {
      await fx.expectRefused(t, route, `${route.head('POST', '/a')}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggledToEvil(route)}`);
    });
    t.test('Transfer-Encoding before Content-Length', async (t) => {
      await fx.expectRefused(t, route, `${route.head('POST', '/a')}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${smuggled(route)}`);
    });
    t.test('Content-Length: 0 with a chunked body hiding a request', async (t) => {
      const hidden = 'GET /smuggled HTTP/1.1\r\nHost: gotcha\r\n\r\n';
      const chunk = `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`;
      await fx.expectRefused(t, route, `${route.head('POST', '/a')}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}`);
    });
    t.test('Transfer-Encoding: chunked with Content-Length: 0 first, then the hidden request as the next message', async (t) => {
      await fx.expectRefused(t, route, `${route.head('POST', '/a')}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n${smuggled(route)}`);
    });
    t.test('no upstream requested /smuggled during 1.01', async (t) => {
      [fx.echo, fx.api, fx.evil].forEach((u, i) => t.notOk(u.seen.slice(start[i]).some((r) => r.url.includes('/smuggled'))));
    });
  });

  t.test(`[${route.name}] 1.02 duplicate, list and non-decimal Content-Length`, async (t) => {
    const cases: Array<[string, string]> = [
      ['twice the same', 'Content-Length: 3\r\nContent-Length: 3\r\n'],
      ['3 then 4', 'Content-Length: 3\r\nContent-Length: 4\r\n'],
      ['list "3, 3"', 'Content-Length: 3, 3\r\n'],
      ['plus sign', 'Content-Length: +3\r\n'],
      ['negative', 'Content-Length: -1\r\n'],
      ['hex', 'Content-Length: 0x3\r\n'],
      ['NaN', 'Content-Length: NaN\r\n'],
      ['empty', 'Content-Length: \r\n'],
      ['space before the colon', 'Content-Length : 3\r\n'],
      ['decimal fraction', 'Content-Length: 3.0\r\n'],
      ['beyond 2^53', 'Content-Length: 99999999999999999999\r\n'],
    ];
    for (const [name, cl] of cases) {
      t.test(name, async (t) => {
        await fx.expectRefused(t, route, `${route.head('POST', '/cl')}${cl}\r\nabcd`);
      });
    }
    t.test('Content-Length: 003 is accepted and re-framed as exactly one Content-Length: 3', async (t) => {
      const before = route.upstream.seen.length;
      const r = await route.send(`${route.head('POST', '/cl003')}Content-Length: 003\r\nConnection: close\r\n\r\nabc`, { waitMs: 3000 });
      const res = parseResponses(r.text);
      if (res[0]?.status === 400) {
        t.pass('refused with 400 (also acceptable)');
        t.equal(route.upstream.seen.length, before);
        return;
      }
      t.equal(res[0]?.status, 200);
      const seen = route.upstream.seen.at(-1);
      t.equal(seen?.url, '/cl003');
      t.equal(seen?.body.toString(), 'abc', 'the body is forwarded whole');
      const cls = [];
      for (let i = 0; i < (seen?.rawHeaders.length ?? 0); i += 2) if (seen?.rawHeaders[i]?.toLowerCase() === 'content-length') cls.push(seen.rawHeaders[i + 1]);
      t.same(cls, ['3'], 'exactly one regenerated Content-Length');
    });
  });

  t.test(`[${route.name}] 1.03 Transfer-Encoding obfuscation`, async (t) => {
    const body = '3\r\nabc\r\n0\r\n\r\n';
    const cases: Array<[string, string | Buffer]> = [
      ['chunked, gzip', 'Transfer-Encoding: chunked, gzip\r\n'],
      ['gzip, chunked', 'Transfer-Encoding: gzip, chunked\r\n'],
      ['xchunked', 'Transfer-Encoding: xchunked\r\n'],
      ['chunked,chunked', 'Transfer-Encoding: chunked,chunked\r\n'],
      ['chunked, (trailing comma)', 'Transfer-Encoding: chunked,\r\n'],
      ['two TE lines (chunked then identity)', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n'],
      ['two TE lines (chunked twice)', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'],
      ['identity', 'Transfer-Encoding: identity\r\n'],
      ['gzip only', 'Transfer-Encoding: gzip\r\n'],
      ['chun\\u212Aed (KELVIN SIGN, sent as UTF-8)', Buffer.from('Transfer-Encoding: chun\u212Aed\r\n', 'utf8')],
      ['chunked in a Transfer_Encoding look-alike name (underscore)', 'Transfer_Encoding: chunked\r\nContent-Length: 3\r\n'],
      ['space before the colon', 'Transfer-Encoding : chunked\r\n'],
    ];
    // llhttp reads these as "not chunked" and fails on the body after the gateway has answered.
    const secondResponse = new Set(['xchunked', 'identity', 'gzip only', 'chun\\u212Aed (KELVIN SIGN, sent as UTF-8)']);
    for (const [name, te] of cases) {
      t.test(name, async (t) => {
        const bytes = Buffer.concat([Buffer.from(route.head('POST', '/te'), 'latin1'), Buffer.isBuffer(te) ? te : Buffer.from(te, 'latin1'), Buffer.from(`\r\n${body}${smuggled(route)}`, 'latin1')]);
        if (name.includes('Transfer_Encoding')) {
          // Not a TE header at all: a legitimate unknown header; the request is framed by Content-Length.
          // It must be either refused, or forwarded with the 3-byte body and nothing else.
          const before = route.upstream.seen.length;
          const r = await route.send(bytes, { waitMs: 1500 });
          const statuses = parseResponses(r.text).map((x) => x.status);
          await settle(300); // the first request may still be on its way upstream when the garbage is refused
          t.ok(statuses[0] === 400 || statuses[0] === 200, `answered ${statuses[0]}`);
          const fwd = route.upstream.seen.slice(before);
          t.ok(fwd.length <= 1, 'at most the one request forwarded');
          if (fwd[0]) t.equal(fwd[0].body.toString(), '3\r\n', 'framed by Content-Length only');
          return;
        }
        await fx.expectRefused(t, route, bytes, {
          todo: {
            ...(secondResponse.has(name) ? { single: BUG_SECOND_RESPONSE } : {}),
            // llhttp takes "gzip, chunked" as chunked-final, so the hidden request is a valid pipelined one.
            ...(name === 'gzip, chunked' ? { nofwd: BUG_PIPELINED_AFTER_REFUSAL } : {}),
          },
        });
      });
    }
    t.test('mixed-case "Chunked" is the chunked coding (RFC 9112: case-insensitive) or refused', async (t) => {
      const before = route.upstream.seen.length;
      const r = await route.send(`${route.head('POST', '/te-case')}Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n${body}`, { waitMs: 3000 });
      const status = parseResponses(r.text)[0]?.status;
      t.ok(status === 200 || status === 400, `answered ${status}`);
      if (status === 200) t.equal(route.upstream.seen.at(-1)?.body.toString(), 'abc', 'de-chunked body forwarded once');
      else t.equal(route.upstream.seen.length, before);
    });
  });
}

t.test('a well-formed chunked request still passes on both paths (control)', async (t) => {
  for (const route of fx.routes) {
    const r = await route.send(`${route.head('POST', '/ok-chunked')}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, { waitMs: 3000 });
    t.equal(parseResponses(r.text)[0]?.status, 200, `[${route.name}] 200`);
    const seen = route.upstream.seen.at(-1);
    t.equal(seen?.url, '/ok-chunked');
    t.equal(seen?.body.toString(), 'abc');
  }
});

t.test('nothing ever requested /smuggled', { todo: BUG_PIPELINED_AFTER_REFUSAL }, async (t) => {
  fx.assertNeverRequested(t, '/smuggled');
});

t.test('CANARY-CLEAN after the smuggling cases', async (t) => {
  fx.assertCanaryClean(t);
});
