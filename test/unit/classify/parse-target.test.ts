import t from 'tap';
import { parseAbsoluteUrl, parseConnectTarget, parseHostHeader } from '../../../src/classify/parse-target.ts';

t.test('parseConnectTarget: accepted', async (t) => {
  const cases: [string, string, string, number][] = [
    ['api.github.com:443', 'api.github.com', 'dns', 443],
    ['API.GITHUB.COM:443', 'api.github.com', 'dns', 443],
    ['api.github.com.:443', 'api.github.com', 'dns', 443],
    ['[::1]:443', '::1', 'ipv6', 443],
    ['[::ffff:7f00:1]:8080', '::ffff:127.0.0.1', 'ipv6', 8080],
    ['[2001:DB8::1]:1', '2001:db8::1', 'ipv6', 1],
    ['2130706433:8080', '127.0.0.1', 'ipv4', 8080],
    ['0x7f.1:65535', '127.0.0.1', 'ipv4', 65535],
    ['127。0。0。1:443', '127.0.0.1', 'ipv4', 443],
  ];
  for (const [target, host, kind, port] of cases) {
    t.same(parseConnectTarget(target), { ok: true, host, kind, port }, target);
  }
});

t.test('parseConnectTarget: malformed (security case 2.10)', async (t) => {
  const cases: [string, RegExp][] = [
    ['api.github.com', /needs a port/],
    ['api.github.com:', /port is empty/],
    ['api.github.com:0', /port/],
    ['api.github.com:65536', /port/],
    ['api.github.com:99999', /port/],
    ['api.github.com:-1', /port/],
    ['api.github.com:+443', /port/],
    ['api.github.com:0443', /port/],
    ['api.github.com:443 ', /port/],
    ['api.github.com:https', /port/],
    ['allowed.com@evil.test:443', /userinfo/],
    ['user:pw@evil.test:443', /brackets|userinfo/],
    ['[fe80::1%25eth0]:443', /zone/],
    ['[fe80::1%eth0]:443', /zone/],
    ['2001:db8::1:443', /brackets/],
    ['api.github.com:443/x', /no path/],
    ['http://api.github.com:443', /not a URL/],
    ['[::1]', /needs a port/],
    ['[::1]443', /only ":port"/],
    ['[::1:443', /closed/],
    [':443', /empty/],
    ['', /empty/],
    ['[]:443', /IPv6/],
    ['1.2.3.999:443', /IPv4/],
    ['exa mple.com:443', /whitespace/],
  ];
  for (const [target, message] of cases) {
    const r = parseConnectTarget(target);
    t.equal(r.ok, false, JSON.stringify(target));
    if (!r.ok) {
      t.equal(r.reason, 'malformed_request');
      t.match(r.message, message, JSON.stringify(target));
    }
  }
});

t.test('parseAbsoluteUrl: accepted', async (t) => {
  const cases: [string, object][] = [
    ['http://api.github.com/user', { scheme: 'http', host: 'api.github.com', port: 80, portExplicit: false, rawPath: '/user', query: '' }],
    ['HTTPS://API.GitHub.com:443/repos?per_page=1', { scheme: 'https', host: 'api.github.com', port: 443, portExplicit: true, rawPath: '/repos', query: 'per_page=1' }],
    ['http://echo.allowed.test', { scheme: 'http', host: 'echo.allowed.test', port: 80, portExplicit: false, rawPath: '/', query: '' }],
    ['http://echo.allowed.test?x=1', { rawPath: '/', query: 'x=1' }],
    ['http://echo.allowed.test/?', { rawPath: '/', query: '' }],
    ['http://echo.allowed.test/a?b?c', { rawPath: '/a', query: 'b?c' }],
    ['ws://h.test:8080/socket', { scheme: 'ws', port: 8080, portExplicit: true }],
    ['wss://h.test/socket', { scheme: 'wss', port: 443, portExplicit: false }],
    ['Http://h.test/x/../%2e%2e/y', { scheme: 'http', rawPath: '/x/../%2e%2e/y' }],
    ['http://h.test/@evil.test/', { host: 'h.test', rawPath: '/@evil.test/' }],
    ['http://[::1]:8080/', { host: '::1', kind: 'ipv6', port: 8080 }],
    ['http://[::ffff:127.0.0.1]/', { host: '::ffff:127.0.0.1', kind: 'ipv6', port: 80 }],
    ['http://2130706433:9/', { host: '127.0.0.1', kind: 'ipv4', port: 9 }],
    ['http://0x7f.1/', { host: '127.0.0.1', kind: 'ipv4' }],
    ['http://localhost./', { host: 'localhost', kind: 'dns' }],
  ];
  for (const [target, want] of cases) {
    const r = parseAbsoluteUrl(target);
    t.equal(r.ok, true, target);
    t.match(r, want, target);
  }
});

t.test('parseAbsoluteUrl: malformed (security cases 2.07, 2.02)', async (t) => {
  const cases: [string, RegExp][] = [
    ['http://api.github.com@evil.test/', /userinfo/],
    ['http://api.github.com:443@evil.test/', /userinfo/],
    ['http://evil.test#@api.github.com/', /fragment/],
    ['http://api.github.com\\@evil.test/', /backslash/],
    ['http://api.github.com\\.evil.test/', /backslash/],
    ['http://user:pw@echo.allowed.test/', /userinfo/],
    ['http://@echo.allowed.test/', /userinfo/],
    ['http://echo.allowed.test/x#frag', /fragment/],
    ['http://echo.allowed.test/a b', /whitespace/],
    ['http://echo.allowed.test/?q=\r\nX: y', /whitespace/],
    ['http://echo.allowed.test/é', /non-ASCII/],
    ['http:///x', /empty/],
    ['http://:80/x', /empty/],
    ['http://', /empty/],
    ['http://h.test:/x', /port is empty/],
    ['http://h.test:0/', /port/],
    ['http://h.test:65536/', /port/],
    ['http://h.test:http/', /port/],
    ['http://h.test:80:80/', /brackets/],
    ['http://2001:db8::1/', /brackets/],
    ['http://[fe80::1%25eth0]/', /zone/],
    ['http://1.2.3.999/', /IPv4/],
    ['http://a..b/', /empty label/],
    ['http://api.github.com%2eevil.test/', /percent/],
    ['ftp://h.test/', /only http/],
    ['javascript:alert(1)', /not an absolute|only http/],
    ['http:/h.test/', /"\/\/"/],
    ['http:h.test', /"\/\/"/],
    ['/origin/form', /not an absolute/],
    ['', /not an absolute/],
    ['h.test:443', /not an absolute/],
    ['h:443', /only http/],
  ];
  for (const [target, message] of cases) {
    const r = parseAbsoluteUrl(target);
    t.equal(r.ok, false, JSON.stringify(target));
    if (!r.ok) {
      t.equal(r.reason, 'malformed_request');
      t.match(r.message, message, JSON.stringify(target));
    }
  }
});

t.test('parseHostHeader', async (t) => {
  const ok: [string, string, number | undefined][] = [
    ['api.github.com', 'api.github.com', undefined],
    ['API.GITHUB.COM.', 'api.github.com', undefined],
    ['api.github.com:8443', 'api.github.com', 8443],
    ['[::1]', '::1', undefined],
    ['[::1]:80', '::1', 80],
    ['127.1:80', '127.0.0.1', 80],
  ];
  for (const [value, host, port] of ok) {
    const r = parseHostHeader(value);
    t.equal(r.ok, true, value);
    if (r.ok) {
      t.equal(r.host, host, value);
      t.equal(r.port, port, `${value} port`);
    }
  }
  for (const bad of ['', 'evil.test:', 'evil.test:0', 'a@evil.test', 'evil.test/x', '::1', '[::1', 'a b', 'evil.test:443:1']) {
    t.equal(parseHostHeader(bad).ok, false, JSON.stringify(bad));
  }
});
