// Security cases 1.09 and 2.07–2.13 (../shared/security-cases.md): bytes pipelined after CONNECT,
// userinfo and parser-differential authorities, Host versus URI authority, duplicate / missing Host,
// malformed CONNECT targets, inner Host and SNI versus the CONNECT authority.
import tls from 'node:tls';
import t from 'tap';
import { collect, connectWithEarlyClientHello, hasResponses, openTunnel, parseResponses, rawSend } from '../../helpers/raw-client.ts';
import { API, ECHO, EVIL, headerPairs, settle, startSecurityFixture } from '../../helpers/security-fixture.ts';

const fx = await startSecurityFixture();
t.teardown(() => fx.close());

t.test('1.09 bytes pipelined after CONNECT', async (t) => {
  t.test('A: CONNECT to EVIL with a request in the same write: refused, the trailing request never runs', async (t) => {
    const echoBefore = fx.snapshot(fx.echo);
    const r = await rawSend(fx.tg.proxyPort, `CONNECT ${EVIL}:443 HTTP/1.1\r\nHost: ${EVIL}:443\r\n${fx.authLine}\r\nGET http://${ECHO}/smuggled HTTP/1.1\r\nHost: ${ECHO}\r\n${fx.authLine}\r\n`, { waitMs: 1500 });
    // Refused outright (403 + close) or intercepted to show a readable 403: either way no forwarding.
    const statuses = parseResponses(r.text).map((x) => x.status);
    t.ok(statuses[0] === 403 || (statuses[0] === 200 && [403, 421].includes(statuses[1] ?? 0)), `refused (${statuses.join(', ')}): outright, or as a readable refusal inside the tunnel`);
    await settle();
    fx.assertNothingForwarded(t, fx.echo, echoBefore, 'ECHO');
    t.equal(fx.evil.tcpConnections, 0, 'NOFWD: EVIL accepted nothing');
    t.notOk(fx.echo.seen.some((x) => x.url.includes('/smuggled')), 'ECHO never received /smuggled');
  });

  t.test('A\': CONNECT to an allowed host with a plain-text request to another host in the same write', async (t) => {
    const echoBefore = fx.snapshot(fx.echo);
    const apiBefore = fx.snapshot(fx.api);
    const r = await rawSend(fx.tg.proxyPort, `CONNECT ${API}:443 HTTP/1.1\r\nHost: ${API}:443\r\n${fx.authLine}\r\nGET http://${ECHO}/smuggled HTTP/1.1\r\nHost: ${ECHO}\r\n\r\n`, { waitMs: 1500, until: hasResponses(2) });
    const res = parseResponses(r.text);
    t.equal(res[0]?.status, 200, 'the tunnel is established');
    t.ok(res[1] !== undefined && [400, 421].includes(res[1].status), `the inner request is refused (${res[1]?.status ?? 'closed'})`);
    await settle();
    fx.assertNothingForwarded(t, fx.echo, echoBefore, 'ECHO');
    fx.assertNothingForwarded(t, fx.api, apiBefore, 'API');
  });

  t.test('B: a TLS ClientHello in the same write as CONNECT is intercepted and works', async (t) => {
    const before = fx.api.seen.length;
    const { tls: sock, connectStatus, firstWriteBytes } = await connectWithEarlyClientHello(fx.tg.proxyPort, `${API}:443`, fx.connectAuth, fx.tg.caPem, API);
    t.match(connectStatus, /^HTTP\/1\.1 200 /);
    t.ok(firstWriteBytes > 200, 'CONNECT and ClientHello went in one write');
    t.ok(sock.getPeerCertificate().subjectaltname?.includes(`DNS:${API}`), 'a leaf for the CONNECT host');
    const r = await collect(sock, `GET /early HTTP/1.1\r\nHost: ${API}\r\n\r\n`, { waitMs: 3000, until: hasResponses(1) });
    sock.destroy();
    t.equal(parseResponses(r.text)[0]?.status, 200);
    t.equal(fx.api.seen.slice(before).map((x) => x.url).join(), '/early');
  });
});

t.test('2.07 userinfo and backslash in absolute-form authorities are refused', async (t) => {
  const targets = [
    `http://${ECHO}@${EVIL}/`,
    `http://${ECHO}:80@${EVIL}/`,
    `http://${EVIL}#@${ECHO}/`,
    `http://${ECHO}\\@${EVIL}/`,
    `http://${ECHO}\\.${EVIL}/`,
    `http://user:pw@${ECHO}/`,
    `http://user@${ECHO}/`,
    `http://@${ECHO}/`,
  ];
  for (const target of targets) {
    t.test(`[plain] ${target}`, async (t) => {
      const host = target.includes(`@${EVIL}`) ? EVIL : ECHO;
      await fx.expectRefused(t, fx.plain, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${fx.authLine}\r\n`, { statuses: [400], close: false });
    });
  }
  for (const target of [`http://user:pw@${API}/`, `https://user:pw@${API}/`, `https://${API}\\@${EVIL}/`]) {
    t.test(`[tunnel] ${target}`, async (t) => {
      await fx.expectRefused(t, fx.tunnel, `GET ${target} HTTP/1.1\r\nHost: ${API}\r\n\r\n`, { statuses: [400, 421], close: false });
    });
  }
  t.test('no upstream ever received an Authorization made from userinfo', async (t) => {
    for (const up of [fx.echo, fx.api, fx.evil]) {
      t.notOk(up.seen.some((x) => headerPairs(x.rawHeaders).some(([n]) => n === 'authorization')));
    }
  });
});

t.test('2.08 absolute-URI authority versus Host header', async (t) => {
  t.test('(a) URI names ECHO, Host names EVIL → 400', async (t) => {
    const first = await fx.expectRefused(t, fx.plain, `GET http://${ECHO}/user HTTP/1.1\r\nHost: ${EVIL}\r\n${fx.authLine}\r\n`, { statuses: [400] });
    t.equal(first?.headers['x-tollgate-reason'], 'host_mismatch');
  });
  t.test('(b) URI names EVIL, Host names ECHO → 403 (the URI decides)', async (t) => {
    const first = await fx.expectRefused(t, fx.plain, `GET http://${EVIL}/ HTTP/1.1\r\nHost: ${ECHO}\r\n${fx.authLine}\r\n`, { statuses: [400, 403], close: false });
    t.ok(first?.headers['x-tollgate-reason'] === 'host_not_allowed' || first?.headers['x-tollgate-reason'] === 'host_mismatch');
  });
  t.test('(c) Host carries another port → 400', async (t) => {
    await fx.expectRefused(t, fx.plain, `GET http://${ECHO}/user HTTP/1.1\r\nHost: ${ECHO}:8443\r\n${fx.authLine}\r\n`, { statuses: [400] });
  });
  t.test('(d) Host with the default port spelled out is the same authority', async (t) => {
    const before = fx.echo.seen.length;
    const r = await rawSend(fx.tg.proxyPort, `GET http://${ECHO}/d HTTP/1.1\r\nHost: ${ECHO}:80\r\n${fx.authLine}Connection: close\r\n\r\n`, { waitMs: 3000 });
    const status = parseResponses(r.text)[0]?.status;
    t.ok(status === 200 || status === 400, `answered ${status}`);
    const fwd = fx.echo.seen.slice(before);
    if (status === 200) t.equal(fwd[0]?.headers.host, ECHO, 'the upstream sees a regenerated Host');
  });
  t.test('ECHO never saw Host: evil.test', async (t) => {
    t.notOk(fx.echo.seen.some((x) => x.headers.host?.includes(EVIL)));
    t.equal(fx.evil.tcpConnections, 0);
  });
});

t.test('2.09 duplicate, empty or missing Host', async (t) => {
  for (const route of fx.routes) {
    const line = route.name === 'plain' ? `GET http://${ECHO}/h HTTP/1.1\r\n${fx.authLine}` : 'GET /h HTTP/1.1\r\n';
    t.test(`[${route.name}] two Host lines (own host, then EVIL)`, async (t) => {
      await fx.expectRefused(t, route, `${line}Host: ${route.host}\r\nHost: ${EVIL}\r\n\r\n`);
    });
    t.test(`[${route.name}] two identical Host lines`, async (t) => {
      await fx.expectRefused(t, route, `${line}Host: ${route.host}\r\nHost: ${route.host}\r\n\r\n`);
    });
    t.test(`[${route.name}] HTTP/1.1 without Host`, async (t) => {
      await fx.expectRefused(t, route, `${line}\r\n`);
    });
    t.test(`[${route.name}] empty Host`, async (t) => {
      await fx.expectRefused(t, route, `${line}Host:\r\n\r\n`);
    });
    t.test(`[${route.name}] Host of only spaces`, async (t) => {
      await fx.expectRefused(t, route, `${line}Host:   \r\n\r\n`);
    });
  }
});

t.test('2.10 malformed CONNECT targets', async (t) => {
  const targets = [
    API, `${API}:0`, `${API}:65536`, `${API}:-1`, `${API}:https`, `${API}:`, `${API}:0443`, `${API}:443:443`,
    `${API}@${EVIL}:443`, `user:pw@${API}:443`, '[fe80::1%25eth0]:443', '2001:db8::1:443', `${API}:443/x`,
    `http://${API}:443`, ':443', '[::1', `${API}%0d%0a:443`, `${API}\\:443`,
  ];
  for (const target of targets) {
    t.test(JSON.stringify(target), async (t) => {
      const before = { api: fx.snapshot(fx.api), evilTcp: fx.evil.tcpConnections, apiTcp: fx.api.tcpConnections };
      const r = await rawSend(fx.tg.proxyPort, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${fx.authLine}\r\n`, { waitMs: 1500 });
      t.match(r.text, /^HTTP\/1\.1 400 /, 'refused with 400');
      t.ok(r.closed, 'and closed');
      t.notMatch(r.text, /\r\n\r\n[\s\S]*HTTP\/1\.1 /, 'nothing after the refusal');
      await settle();
      t.equal(fx.api.tcpConnections, before.apiTcp, 'no connection to API');
      t.equal(fx.evil.tcpConnections, before.evilTcp, 'no connection to EVIL');
    });
  }
  t.test('CONNECT to API with Host: evil.test:443 — the request-target decides (or 400), never a tunnel to EVIL', async (t) => {
    const before = fx.api.seen.length;
    let sock;
    try {
      sock = await openTunnel(fx.tg.proxyPort, `${API}:443`, { ...fx.connectAuth });
    } catch (err) {
      t.match(String(err), /400/, 'refused with 400');
      return;
    }
    sock.destroy();
    // openTunnel always sends Host = authority; send the mismatching Host by hand.
    const raw = await rawSend(fx.tg.proxyPort, `CONNECT ${API}:443 HTTP/1.1\r\nHost: ${EVIL}:443\r\n${fx.authLine}\r\n`, { waitMs: 1000, until: (x) => x.includes('\r\n\r\n') });
    t.ok(/^HTTP\/1\.1 (200|400) /.test(raw.text), `answered ${raw.text.split('\r\n')[0]}`);
    t.equal(fx.evil.tcpConnections, 0, 'never a connection to EVIL');
    t.equal(fx.api.seen.length, before);
  });
});

t.test('2.12 inner Host does not match the CONNECT authority', async (t) => {
  const cases: Array<[string, string]> = [
    ['Host: evil.test', `GET /user HTTP/1.1\r\nHost: ${EVIL}\r\n\r\n`],
    ['Host: 10.0.0.1', 'GET /user HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n'],
    ['Host: echo.allowed.test (allowed, but not this tunnel)', `GET /user HTTP/1.1\r\nHost: ${ECHO}\r\n\r\n`],
    ['Host with another port', `GET /user HTTP/1.1\r\nHost: ${API}:8443\r\n\r\n`],
    ['absolute-form to EVIL', `GET http://${EVIL}/ HTTP/1.1\r\nHost: ${EVIL}\r\n\r\n`],
    ['absolute-form to the tunnel host with another scheme/port', `GET http://${API}/ HTTP/1.1\r\nHost: ${API}\r\n\r\n`],
    ['absolute-form to the tunnel host, Host header EVIL', `GET https://${API}/ HTTP/1.1\r\nHost: ${EVIL}\r\n\r\n`],
  ];
  for (const [name, bytes] of cases) {
    t.test(name, async (t) => {
      const first = await fx.expectRefused(t, fx.tunnel, bytes, { statuses: [421, 403], close: false });
      t.equal(first?.headers['x-tollgate-reason'], 'host_mismatch');
    });
  }
  t.test('after a correctly addressed request, a mismatching one on the same connection is refused', async (t) => {
    const before = fx.api.seen.length;
    const sock = await fx.intercepted();
    const a = await collect(sock, `GET /first HTTP/1.1\r\nHost: ${API}\r\n\r\n`, { waitMs: 3000, until: hasResponses(1), destroyOnTimeout: false });
    t.equal(parseResponses(a.text)[0]?.status, 200);
    const b = await collect(sock, `GET /second HTTP/1.1\r\nHost: ${EVIL}\r\n\r\n`, { waitMs: 3000, until: hasResponses(1) });
    sock.destroy();
    t.equal(parseResponses(b.text)[0]?.status, 421);
    await settle();
    t.same(fx.api.seen.slice(before).map((x) => x.url), ['/first'], 'API received only the correctly addressed request');
    t.equal(fx.evil.tcpConnections, 0);
  });
  t.test('a correctly addressed request with an explicit :443 is accepted', async (t) => {
    const sock = await fx.intercepted();
    const r = await collect(sock, `GET /port HTTP/1.1\r\nHost: ${API}:443\r\nConnection: close\r\n\r\n`, { waitMs: 3000 });
    t.equal(parseResponses(r.text)[0]?.status, 200);
  });
});

t.test('2.13 SNI versus the CONNECT authority', async (t) => {
  async function handshake(servername: string | undefined): Promise<{ ok: true; sock: tls.TLSSocket } | { ok: false; error: string }> {
    const raw = await openTunnel(fx.tg.proxyPort, `${API}:443`, fx.connectAuth);
    return new Promise((resolve) => {
      const s = tls.connect({ socket: raw, ca: fx.tg.caPem, ...(servername === undefined ? {} : { servername }), checkServerIdentity: () => undefined });
      const timer = setTimeout(() => { s.destroy(); resolve({ ok: false, error: 'timeout' }); }, 3000);
      s.once('secureConnect', () => { clearTimeout(timer); resolve({ ok: true, sock: s }); });
      s.once('error', (e) => { clearTimeout(timer); resolve({ ok: false, error: (e as NodeJS.ErrnoException).code ?? e.message }); });
      s.once('close', () => { clearTimeout(timer); resolve({ ok: false, error: 'closed' }); });
    });
  }
  for (const sni of [EVIL, ECHO, `x.${API}`, `${API}.evil.test`]) {
    t.test(`SNI ${sni}: the handshake fails and nothing is contacted`, async (t) => {
      const before = { api: fx.api.tcpConnections, evil: fx.evil.tcpConnections, echo: fx.echo.tcpConnections };
      const r = await handshake(sni);
      t.notOk(r.ok, `handshake refused (${r.ok ? 'succeeded' : r.error})`);
      if (r.ok) r.sock.destroy();
      await settle();
      t.same({ api: fx.api.tcpConnections, evil: fx.evil.tcpConnections, echo: fx.echo.tcpConnections }, before, 'no upstream connection');
    });
  }
  t.test('no SNI: a certificate for the CONNECT host', async (t) => {
    const r = await handshake(undefined);
    t.ok(r.ok, 'handshake succeeds');
    if (!r.ok) return;
    t.match(r.sock.getPeerCertificate().subjectaltname ?? '', new RegExp(`DNS:${API.replace(/\./g, '\\.')}`));
    const res = await collect(r.sock, `GET /nosni HTTP/1.1\r\nHost: ${API}\r\nConnection: close\r\n\r\n`, { waitMs: 3000 });
    t.equal(parseResponses(res.text)[0]?.status, 200);
  });
  for (const sni of [API.toUpperCase(), `${API}.`, 'Api.Allowed.Test']) {
    t.test(`SNI ${sni} is the same name`, async (t) => {
      const r = await handshake(sni);
      t.ok(r.ok, `handshake succeeds (${r.ok ? '' : r.error})`);
      if (!r.ok) return;
      t.match(r.sock.getPeerCertificate().subjectaltname ?? '', /DNS:api\.allowed\.test/);
      const res = await collect(r.sock, `GET /sni-variant HTTP/1.1\r\nHost: ${API}\r\nConnection: close\r\n\r\n`, { waitMs: 3000 });
      t.equal(parseResponses(res.text)[0]?.status, 200);
    });
  }
});

t.test('CANARY-CLEAN', async (t) => fx.assertCanaryClean(t));
