// upstream_proxy in tollgate.yaml: a URL the dialer can use, or an error at its line and column
// that never quotes the credentials.
import t from 'tap';
import { parseGatewayConfig } from '../../../src/config/gateway-config.ts';
import { formatProblem } from '../../../src/errors.ts';

t.test('upstream_proxy: usable URLs load; unusable ones are errors at file:line:col', async (t) => {
  for (const good of ['http://proxy.corp.example:3128', 'https://svc:s3cr%40t@proxy.corp.example', 'http://tokenonly@10.0.0.1:8080/', 'http://[fd00::1]:3128']) {
    const r = parseGatewayConfig('tollgate.yaml', `data_dir: ./d\nupstream_proxy: "${good}"\n`, {});
    t.ok(r.ok, good);
    if (r.ok) t.equal(r.config.upstreamProxy, good);
  }
  const rows: Array<[string, RegExp]> = [
    ['http://', /tollgate\.yaml:2:\d+: .*upstream_proxy: not a URL/],
    ['http://proxy.corp.example:3128/some/path', /tollgate\.yaml:2:\d+: .*upstream_proxy: a proxy URL has no path, query or fragment/],
    ['http://proxy.corp.example:3128?x=1', /upstream_proxy: a proxy URL has no path, query or fragment/],
    ['http://us%zz:pw-secret@proxy.corp.example:3128', /upstream_proxy: the user name or password holds a malformed %-escape/],
  ];
  for (const [text, want] of rows) {
    const r = parseGatewayConfig('tollgate.yaml', `data_dir: ./d\nupstream_proxy: "${text}"\n`, {});
    t.notOk(r.ok, text);
    if (!r.ok) {
      const shown = r.problems.map(formatProblem).join('\n');
      t.match(shown, want, text);
      t.notMatch(shown, /pw-secret/, 'the password is not quoted');
    }
  }
});
