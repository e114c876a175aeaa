// Forged and damaged ID tokens at the gateway's token exchange, POST /api/v1/auth/token (security
// cases 5.02, 5.03, 5.06, 5.07): a scripted identity provider on loopback whose keys the test holds,
// so a genuine token is the control and every forgery differs from it in one way. Each forgery gets
// 401 id_token_invalid — never a gateway token, never a 5xx — and the gateway keeps working.
import { createHmac, createSign, generateKeyPairSync, KeyObject, sign as signRaw } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import t from 'tap';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { SSO_TEST_ORG_YAML, startTestGateway } from '../../helpers/gateway-harness.ts';

const CLIENT = 'tollgate';
const rsa = await generateKeyPair('RS256', { extractable: true });
const ec = await generateKeyPair('ES256', { extractable: true });
const attacker = await generateKeyPair('RS256', { extractable: true });
const rsaJwk: JWK = { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
const ecJwk: JWK = { ...(await exportJWK(ec.publicKey)), kid: 'e1', alg: 'ES256', use: 'sig' };
const attackerJwk: JWK = { ...(await exportJWK(attacker.publicKey)), kid: 'evil', alg: 'RS256', use: 'sig' };

/** The identity provider: discovery and JWKS only (the test signs the ID tokens itself). */
const idpServer = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  if (req.url === '/.well-known/openid-configuration') {
    res.end(JSON.stringify({
      issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
      id_token_signing_alg_values_supported: ['RS256', 'ES256'],
    }));
  } else if (req.url === '/jwks') {
    res.end(JSON.stringify({ keys: [rsaJwk, ecJwk] }));
  } else {
    res.statusCode = 404;
    res.end('{}');
  }
});
await new Promise<void>((r) => idpServer.listen(0, '127.0.0.1', () => r()));
const issuer = `http://127.0.0.1:${(idpServer.address() as net.AddressInfo).port}`;

/** The attacker's key server: would hand out the attacker's key to anyone following jku/x5u. */
const evilHits: string[] = [];
const evilServer = http.createServer((req, res) => {
  evilHits.push(`${req.method ?? ''} ${req.url ?? ''}`);
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ keys: [attackerJwk, { ...attackerJwk, kid: 'k1' }] }));
});
await new Promise<void>((r) => evilServer.listen(0, '127.0.0.1', () => r()));
const evilUrl = `http://127.0.0.1:${(evilServer.address() as net.AddressInfo).port}`;

const gw = await startTestGateway({
  files: { 'org.yaml': SSO_TEST_ORG_YAML },
  sso: { issuers: [{ name: 'scripted', issuer, client_id: CLIENT }] },
});
t.teardown(async () => {
  await gw.stop();
  for (const s of [idpServer, evilServer]) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);
const claims = (nonce: string, over: JWTPayload = {}): JWTPayload => ({
  iss: issuer, aud: CLIENT, sub: 'u-alice', iat: nowS() - 5, exp: nowS() + 300, nonce, email: 'alice@acme.example', groups: ['alpha-people'], ...over,
});
const rs256 = (text: string) => createSign('RSA-SHA256').update(text).sign(KeyObject.from(rsa.privateKey)).toString('base64url');
/** header and payload as exact JSON text, RS256-signed with the IdP's real key. */
const signedText = (header: string, payload: string) => {
  const body = `${b64(header)}.${b64(payload)}`;
  return `${body}.${rs256(body)}`;
};

async function mintNonce(): Promise<string> {
  const cfg = (await (await fetch(`${gw.adminUrl}/api/v1/auth/config`)).json()) as { nonce: string };
  return cfg.nonce;
}

async function exchange(idToken: unknown, nonce: string) {
  const res = await fetch(`${gw.adminUrl}/api/v1/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ issuer: 'scripted', id_token: idToken, nonce, flow: 'code' }),
  });
  return { status: res.status, body: (await res.json()) as { error?: { code: string }; token?: string } };
}

t.test('control: a genuine token from the scripted IdP is exchanged', async (t) => {
  for (const alg of ['RS256', 'ES256'] as const) {
    const nonce = await mintNonce();
    const tok = await new SignJWT(claims(nonce)).setProtectedHeader({ alg, kid: alg === 'RS256' ? 'k1' : 'e1', typ: 'JWT' }).sign(alg === 'RS256' ? rsa.privateKey : ec.privateKey);
    const r = await exchange(tok, nonce);
    t.equal(r.status, 200, alg);
    t.match(r.body.token, /^tg_/);
  }
});

type Forgery = [name: string, make: (nonce: string) => string | Promise<string>];

t.test('forged ID tokens: 401 id_token_invalid, no gateway token, never a 5xx (5.02, 5.03, 5.06, 5.07)', async (t) => {
  const pem = await exportSPKI(rsa.publicKey);
  const ecBody = (nonce: string) => `${b64({ alg: 'ES256', kid: 'e1', typ: 'JWT' })}.${b64(claims(nonce))}`;
  const otherCurve = (curve: string) => (nonce: string) => {
    const body = ecBody(nonce);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
    return `${body}.${signRaw('sha256', Buffer.from(body), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  const hs256 = (secret: string | Buffer) => (nonce: string) => {
    const body = `${b64({ alg: 'HS256', kid: 'k1', typ: 'JWT' })}.${b64(claims(nonce))}`;
    return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
  };
  const byAttacker = (header: Record<string, unknown>) => (nonce: string) =>
    new SignJWT(claims(nonce)).setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...header }).sign(attacker.privateKey);
  const genuine = (nonce: string) => signedText(JSON.stringify({ alg: 'RS256', kid: 'k1', typ: 'JWT' }), JSON.stringify(claims(nonce)));
  const forgeries: Forgery[] = [
    ['alg none', (n) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims(n))}.`],
    ['alg none with a signature part', (n) => `${b64({ alg: 'none', kid: 'k1' })}.${b64(claims(n))}.AAAA`],
    ['HS256 keyed with the IdP public key (PEM)', hs256(pem)],
    ['HS256 keyed with the IdP public key (JWK JSON)', hs256(JSON.stringify(rsaJwk))],
    ['ES256 signed with a P-384 key', otherCurve('P-384')],
    ['ES256 signed with a secp256k1 key', otherCurve('secp256k1')],
    ['ES256 with r = s = 0', (n) => `${ecBody(n)}.${Buffer.alloc(64).toString('base64url')}`],
    ['ES256 with r = s = 0 in DER', (n) => `${ecBody(n)}.${Buffer.from('3006020100020100', 'hex').toString('base64url')}`],
    ['RS256 by an attacker key under the IdP kid', byAttacker({ kid: 'k1' })],
    ['jku to the attacker', byAttacker({ kid: 'evil', jku: `${evilUrl}/jwks.json` })],
    ['x5u to the attacker', byAttacker({ kid: 'k1', x5u: `${evilUrl}/c.pem` })],
    ['embedded jwk', byAttacker({ jwk: { kty: attackerJwk.kty, n: attackerJwk.n, e: attackerJwk.e } })],
    ['kid path traversal', byAttacker({ kid: '../../../../dev/null' })],
    ['one flipped payload byte', async (n) => {
      const [h, p, s] = genuine(n).split('.') as [string, string, string];
      return `${h}.${b64(Buffer.from(p, 'base64url').toString().replace('alice', 'alicf'))}.${s}`;
    }],
    ['a truncated signature', (n) => genuine(n).slice(0, -40)],
    ['a payload that is not JSON', (n) => { const [h, , s] = genuine(n).split('.'); return `${h ?? ''}.${b64('not json {')}.${s ?? ''}`; }],
    ['a header that is not JSON', (n) => { const [, p, s] = genuine(n).split('.'); return `${b64('{"alg":')}.${p ?? ''}.${s ?? ''}`; }],
    ['payload null', (n) => { const [h, , s] = genuine(n).split('.'); return `${h ?? ''}.${b64('null')}.${s ?? ''}`; }],
    ['JWS JSON serialisation', (n) => { const [h, p, s] = genuine(n).split('.'); return JSON.stringify({ protected: h, payload: p, signature: s }); }],
    ['a 20 KB token', (n) => { const [h, , s] = genuine(n).split('.'); return `${h ?? ''}.${'A'.repeat(20_000)}.${s ?? ''}`; }],
  ];
  for (const [name, make] of forgeries) {
    const nonce = await mintNonce();
    const r = await exchange(await make(nonce), nonce);
    t.ok(r.status < 500, `${name}: not a server error (${r.status})`);
    t.equal(r.status, 401, name);
    t.equal(r.body.error?.code, 'id_token_invalid', `${name}: id_token_invalid`);
    t.notOk(r.body.token, `${name}: no gateway token`);
  }
  const nonce = await mintNonce();
  const notString = await exchange({ alg: 'none' }, nonce);
  t.equal(notString.status, 400, 'an id_token that is not a string: 400');
  t.same(evilHits, [], 'the attacker key server received no request');
  t.notOk(gw.logs.some((l) => l['level'] === 'error'), 'no error logged');
  const refused = gw.logs.filter((l) => l['msg'] === 'sso_login' && l['event'] === 'token_refused');
  t.equal(refused.filter((l) => l['code'] === 'id_token_invalid').length, forgeries.length, 'each forgery logged as id_token_invalid');
});

t.test('duplicate JSON member names are refused even under a genuine signature (5.06)', async (t) => {
  const header = JSON.stringify({ alg: 'RS256', kid: 'k1', typ: 'JWT' });
  const cases: Array<[string, string, (payload: string) => string]> = [
    ['two "alg" in the header (none, then RS256)', '{"alg":"none","kid":"k1","typ":"JWT","alg":"RS256"}', (p) => p],
    ['two "email" in the payload', header, (p) => p.replace('{', '{"email":"mallory@evil.example",')],
    ['two "sub" in the payload', header, (p) => p.replace('"sub":"u-alice"', '"sub":"u-mallory","sub":"u-alice"')],
  ];
  for (const [name, h, payload] of cases) {
    const nonce = await mintNonce();
    const r = await exchange(signedText(h, payload(JSON.stringify(claims(nonce)))), nonce);
    t.equal(r.status, 401, name);
    t.notOk(r.body.token, `${name}: no gateway token`);
  }
});

t.test('after every forgery the gateway still signs people in', async (t) => {
  const nonce = await mintNonce();
  const r = await exchange(await new SignJWT(claims(nonce)).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(rsa.privateKey), nonce);
  t.equal(r.status, 200);
});
