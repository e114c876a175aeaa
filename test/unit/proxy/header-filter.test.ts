// Which header lines cross the proxy (security cases 4.01, 4.06, 4.07).
import t from 'tap';
import { forwardableRequestHeaders, relayableRawHead, relayableResponseHeaders } from '../../../src/proxy/header-filter.ts';

const flat = (pairs: Array<[string, string]>) => pairs.flat();

t.test('request headers: hop-by-hop, Proxy-*, X-Tollgate-* and steering headers are dropped, the rest kept in order and case', async (t) => {
  const cases: Array<[string, Array<[string, string]>, Array<[string, string]>]> = [
    ['ordinary headers pass', [['Accept', '*/*'], ['X-Api-Key', 'k'], ['user-agent', 'curl/8']], [['Accept', '*/*'], ['X-Api-Key', 'k'], ['user-agent', 'curl/8']]],
    ['hop-by-hop and Host', [['Host', 'a'], ['Connection', 'keep-alive'], ['Keep-Alive', '5'], ['TE', 'trailers'], ['Transfer-Encoding', 'chunked'], ['Upgrade', 'h2c'], ['Expect', '100-continue'], ['Accept', 'x']], [['Accept', 'x']]],
    ['named in Connection', [['Connection', 'close, X-Secret-Hop'], ['X-Secret-Hop', '1'], ['X-Other', '2']], [['X-Other', '2']]],
    ['every Proxy-*', [['Proxy-Authorization', 'Basic x'], ['Proxy-Connection', 'keep-alive'], ['PROXY-Anything', 'y'], ['A', 'b']], [['A', 'b']]],
    ['the gateway namespace, any case', [['X-Tollgate-Decision', 'allow'], ['x-tollgate-team', 'beta'], ['X-TOLLGATE-BUDGET', '999'], ['X-Tollgated', 'kept']], [['X-Tollgated', 'kept']]],
    ['forwarding claims', [['X-Forwarded-For', '10.0.0.1'], ['Forwarded', 'for=1.2.3.4;host=api.github.com'], ['X-Real-IP', '10.0.0.2'], ['X-Forwarded-Host', 'evil.test'], ['X-Forwarded-Proto', 'http'], ['X-Forwarded-Port', '80'], ['X-Forwarded-Prefix', '/admin'], ['X-Client-IP', '1.1.1.1'], ['True-Client-IP', '1.1.1.1'], ['Via', '1.1 x']], [['Via', '1.1 x']]],
    ['URL rewrites', [['X-Original-URL', '/admin'], ['X-Rewrite-URL', '/admin'], ['X-Original-Host', 'evil.test'], ['X-Gateway-Team', 'beta']], [['X-Gateway-Team', 'beta']]],
  ];
  for (const [name, input, want] of cases) t.same(forwardableRequestHeaders(flat(input)), want, name);
  t.same(forwardableRequestHeaders(flat([['Connection', 'x'], ['Expect', '100-continue']]), new Set(['expect'])), [['Expect', '100-continue']], '`keep` wins over every rule');
});

t.test('response headers: hop-by-hop, Proxy-* and X-Tollgate-* from the upstream are dropped', async (t) => {
  const out = relayableResponseHeaders({
    'content-type': 'text/plain',
    'x-tollgate-decision': 'allow',
    'x-tollgate-reason': 'none',
    'x-tollgate-budget-remaining': '999',
    'proxy-authenticate': 'Basic realm="x"',
    'proxy-connection': 'keep-alive',
    connection: 'close, x-hop',
    'x-hop': '1',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    'x-request-id': 'upstream-id',
    'set-cookie': ['a=1', 'b=2'],
    'x-gateway-decision': 'allow',
    'x-empty': undefined,
  });
  t.same(out, ['content-type', 'text/plain', 'x-request-id', 'upstream-id', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-gateway-decision', 'allow']);
});

t.test('a raw response head relayed as bytes: X-Tollgate-* and Proxy-* lines (and their continuations) dropped', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['nothing to drop', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'],
    ['gateway and proxy lines', 'HTTP/1.1 101 OK\r\nX-Tollgate-Decision: allow\r\nUpgrade: websocket\r\nproxy-authenticate: Basic\r\nPROXY-CONNECTION: keep-alive\r\n', 'HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n'],
    ['a folded continuation goes with its line', 'HTTP/1.1 403 No\r\nX-Tollgate-Rule: a\r\n  b\r\n\tc\r\nX-Own: d\r\n  e\r\nContent-Length: 0\r\n', 'HTTP/1.1 403 No\r\nX-Own: d\r\n  e\r\nContent-Length: 0\r\n'],
    ['a line without a colon is kept', 'HTTP/1.1 200 OK\r\nweird\r\n', 'HTTP/1.1 200 OK\r\nweird\r\n'],
    ['a status line that looks like a header is kept', 'X-Tollgate-A: 1\r\n', 'X-Tollgate-A: 1\r\n'],
  ];
  for (const [name, input, want] of cases) t.equal(relayableRawHead(input), want, name);
});
