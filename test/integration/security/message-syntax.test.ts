// Security case 1.05 (../shared/security-cases.md): folding, bare LF / CR, control bytes and bad
// whitespace in the request line and header block. Raw bytes on the plain path and inside an
// intercepted tunnel; every refusal is 400 + close and NOFWD.
import t from 'tap';
import { parseResponses } from '../../helpers/raw-client.ts';
import { startSecurityFixture } from '../../helpers/security-fixture.ts';

const fx = await startSecurityFixture();
t.teardown(() => fx.close());

const BUG_DOUBLE_SP = 'bug: Node llhttp accepts repeated SP in the request line and the gateway has no raw request-line check (proxy-server.ts)';

for (const route of fx.routes) {
  t.test(`[${route.name}] 1.05 folding, whitespace and control bytes in the header block`, async (t) => {
    const cases: Array<[string, string | Buffer]> = [
      ['obs-fold continuation line', `${route.head('GET', '/fold')}X-A: b\r\n c\r\n\r\n`],
      ['obs-fold with a tab', `${route.head('GET', '/fold')}X-A: b\r\n\tc\r\n\r\n`],
      ['first header line folded onto the request line', `${route.head('GET', '/fold').replace('\r\n', '\r\n X-Lead: 1\r\n')}\r\n`],
      ['space before the colon (Content-Length : 0)', `${route.head('POST', '/ws')}Content-Length : 0\r\n\r\n`],
      ['space before the colon (X-A : b)', `${route.head('GET', '/ws')}X-A : b\r\n\r\n`],
      ['bare LF line endings throughout', `${route.head('GET', '/lf')}X-A: b\r\n\r\n`.replace(/\r\n/g, '\n')],
      ['bare LF ending one header line', `${route.head('GET', '/lf')}X-A: b\nX-B: c\r\n\r\n`],
      ['bare LF ending the header section', `${route.head('GET', '/lf')}X-A: b\r\n\n`],
      ['bare CR inside a header line', `${route.head('GET', '/cr')}X-A: b\rX-B: c\r\n\r\n`],
      ['NUL in a value', `${route.head('GET', '/nul')}X-A: b\0c\r\n\r\n`],
      ['DEL in a value', `${route.head('GET', '/del')}X-A: b\x7fc\r\n\r\n`],
      ['obs-text (0xFF) in a value', Buffer.concat([Buffer.from(`${route.head('GET', '/obs')}X-A: b`, 'latin1'), Buffer.from([0xff]), Buffer.from('\r\n\r\n')])],
      ['tab inside a header name', `${route.head('GET', '/tab')}X\tA: b\r\n\r\n`],
      ['space inside a header name', `${route.head('GET', '/sp')}X A: b\r\n\r\n`],
      ['empty header name', `${route.head('GET', '/empty')}: b\r\n\r\n`],
      ['two spaces in the request line', route.head('GET', '/sp2').replace(' ', '  ') + '\r\n'],
      ['tab as the request-line separator', route.head('GET', '/tabsep').replace(' ', '\t') + '\r\n'],
      ['HTTP/1.2', route.head('GET', '/v12').replace('HTTP/1.1', 'HTTP/1.2') + '\r\n'],
      ['HTTP/2.0 in an HTTP/1 request line', route.head('GET', '/v2').replace('HTTP/1.1', 'HTTP/2.0') + '\r\n'],
      ['lower-case http/1.1', route.head('GET', '/lc').replace('HTTP/1.1', 'http/1.1') + '\r\n'],
    ];
    for (const [name, bytes] of cases) {
      t.test(name, async (t) => {
        await fx.expectRefused(t, route, bytes, {
          statuses: name.startsWith('HTTP/') ? [400, 505] : [400],
          ...(name === 'two spaces in the request line' ? { todo: { status: BUG_DOUBLE_SP, close: BUG_DOUBLE_SP, nofwd: BUG_DOUBLE_SP } } : {}),
        });
      });
    }
  });

}

t.test('the gateway still serves well-formed requests on both paths (control)', async (t) => {
  for (const route of fx.routes) {
    const r = await route.send(`${route.head('GET', '/still-alive')}Connection: close\r\n\r\n`, { waitMs: 3000 });
    t.equal(parseResponses(r.text)[0]?.status, 200, `[${route.name}] 200`);
    t.equal(route.upstream.seen.at(-1)?.url, '/still-alive');
  }
});

t.test('CANARY-CLEAN', async (t) => fx.assertCanaryClean(t));
