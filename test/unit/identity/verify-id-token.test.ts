// ID token verification against forged and damaged tokens (security cases 5.02–5.07, 5.11),
// built with jose; the key set is local and the clock fixed.
import { createHmac, createSign, generateKeyPairSync, KeyObject, sign as signRaw } from 'node:crypto';
import t, { type Test } from 'tap';
import { createLocalJWKSet, exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { verifyIdToken, type VerifyIdTokenInput } from '../../../src/identity/oidc/verify-id-token.ts';

const NOW = 1_800_000_000_000;
const NOW_S = NOW / 1000;
const ISS = 'https://idp.test';
const CLIENT = 'tollgate';

const k1 = await generateKeyPair('RS256', { extractable: true });
const other = await generateKeyPair('RS256', { extractable: true });
const ec = await generateKeyPair('ES256', { extractable: true });
const ps = await generateKeyPair('PS256', { extractable: true });
const e384 = await generateKeyPair('ES384', { extractable: true });
const pub1: JWK = { ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
const getKey = createLocalJWKSet({ keys: [pub1] });
/** An IdP that also publishes an EC P-256 key (kid e1) and a P-384 key (kid e384), and signs with RS256 or ES256. */
const pubE1: JWK = { ...(await exportJWK(ec.publicKey)), kid: 'e1', alg: 'ES256', use: 'sig' };
const pubE384: JWK = { ...(await exportJWK(e384.publicKey)), kid: 'e384', use: 'sig' };
const ecInput = { algorithms: ['RS256', 'ES256'], getKey: createLocalJWKSet({ keys: [pub1, pubE1, pubE384] }) };

const claims = (over: JWTPayload = {}): JWTPayload => ({
  iss: ISS, aud: CLIENT, sub: 'u-1', iat: NOW_S - 10, exp: NOW_S + 300, nonce: 'N1', email: 'alice@acme.example', ...over,
});
const sign = (payload: JWTPayload, header: Record<string, unknown> = {}, key: typeof k1.privateKey = k1.privateKey) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT', ...header }).sign(key);
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const input = (token: string, over: Partial<VerifyIdTokenInput> = {}): VerifyIdTokenInput => ({
  token, issuer: ISS, clientId: CLIENT, algorithms: ['RS256'], getKey, now: NOW, nonce: 'N1', ...over,
});

t.test('a good token verifies', async (t) => {
  const c = await verifyIdToken(input(await sign(claims())));
  t.equal(c.sub, 'u-1');
  t.equal(c['email'], 'alice@acme.example');
});

type Tap = Test;
const refused = async (tt: Tap, name: string, token: string | Promise<string>, over: Partial<VerifyIdTokenInput> = {}, message?: RegExp) => {
  await tt.rejects(verifyIdToken(input(await token, over)), { code: 'id_token_invalid', ...(message ? { message } : {}) }, name);
};

t.test('alg none and unsigned tokens (5.02)', async (t) => {
  for (const alg of ['none', 'None', 'NONE']) await refused(t, `alg ${alg}`, `${b64({ alg, typ: 'JWT' })}.${b64(claims())}.`);
  await refused(t, 'HS256 with an empty signature', `${b64({ alg: 'HS256', kid: 'k1' })}.${b64(claims())}.`);
});

t.test('algorithm confusion (5.03)', async (t) => {
  const body = `${b64({ alg: 'HS256', kid: 'k1', typ: 'JWT' })}.${b64(claims())}`;
  const pem = await exportSPKI(k1.publicKey);
  for (const [what, secret] of [['PEM', pem], ['JWK JSON', JSON.stringify(pub1)], ['DER', Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64')]] as const) {
    const sig = createHmac('sha256', secret).update(body).digest('base64url');
    await refused(t, `HS256 signed with the public key as ${what}`, `${body}.${sig}`, {}, /algorithm/);
  }
  await refused(t, 'ES256 when only RS256 is allowed', new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(ec.privateKey), {}, /algorithm/);
  await refused(t, 'PS256 not on the allow-list', new SignJWT(claims()).setProtectedHeader({ alg: 'PS256', kid: 'k1' }).sign(ps.privateKey), {}, /algorithm/);
});

t.test('issuer, audience, authorized party, type (5.04)', async (t) => {
  await refused(t, 'wrong iss', sign(claims({ iss: 'https://evil.test' })), {}, /another issuer/);
  await refused(t, 'iss with a trailing slash', sign(claims({ iss: `${ISS}/` })), {}, /another issuer/);
  await refused(t, 'aud of another client', sign(claims({ aud: 'other-client' })), {}, /another client/);
  await refused(t, 'no aud', sign(claims({ aud: undefined })));
  await refused(t, 'several audiences, no azp', sign(claims({ aud: [CLIENT, 'other'] })), {}, /authorized party/);
  await refused(t, 'several audiences, azp of another client', sign(claims({ aud: [CLIENT, 'other'], azp: 'other' })), {}, /another client/);
  await t.resolves(verifyIdToken(input(await sign(claims({ aud: [CLIENT, 'other'], azp: CLIENT })))), 'several audiences with azp = us');
  await refused(t, 'an access token (typ at+jwt)', sign(claims(), { typ: 'at+jwt' }), {}, /not an ID token/);
});

t.test('time claims (5.05): exp strict, nbf/iat with 60 s of skew, max age', async (t) => {
  await refused(t, 'exp = now', sign(claims({ exp: NOW_S })), {}, /expired/);
  await refused(t, 'exp = now - 61 s', sign(claims({ exp: NOW_S - 61 })), {}, /expired/);
  await refused(t, 'no exp', sign(claims({ exp: undefined })));
  await refused(t, 'no iat', sign(claims({ iat: undefined })));
  await refused(t, 'nbf = now + 120 s', sign(claims({ nbf: NOW_S + 120 })), {}, /not valid yet/);
  await refused(t, 'iat = now + 120 s', sign(claims({ iat: NOW_S + 120 })), {}, /future/);
  await refused(t, 'issued 12 minutes ago (max age 10 min + 60 s skew)', sign(claims({ iat: NOW_S - 720 })), {}, /too old/);
  await t.resolves(verifyIdToken(input(await sign(claims({ nbf: NOW_S + 30, iat: NOW_S + 30 })))), '30 s of skew is tolerated');
});

t.test('signature and structure tampering (5.06)', async (t) => {
  const good = await sign(claims());
  const [h, p, s] = good.split('.') as [string, string, string];
  const flipped = Buffer.from(p, 'base64url');
  flipped[5] = (flipped[5] ?? 0) ^ 1;
  await refused(t, 'one flipped payload byte', `${h}.${flipped.toString('base64url')}.${s}`);
  await refused(t, 'truncated signature', `${h}.${p}.${s.slice(0, 20)}`);
  await refused(t, 'signed by a key the IdP does not publish', sign(claims(), {}, other.privateKey), {}, /signature/);
  await refused(t, 'payload []', `${h}.${b64([])}.${s}`);
  await refused(t, 'payload null', `${h}.${b64('null')}.${s}`);
  await refused(t, 'JWS JSON serialisation', JSON.stringify({ payload: p, protected: h, signature: s }));
  await refused(t, 'a 100 KB token', `${h}.${'A'.repeat(100_000)}.${s}`, {}, /too large/);
  await refused(t, 'b64:false with crit', sign(claims(), { b64: false, crit: ['b64'] }).catch(() => `${b64({ alg: 'RS256', kid: 'k1', b64: false, crit: ['b64'] })}.${p}.${s}`));
});

t.test('kid, jku, x5u and embedded jwk (5.07)', async (t) => {
  for (const kid of ['../../../../dev/null', "x' UNION SELECT 'k'--", 'k'.repeat(10_000)]) {
    await refused(t, `kid ${kid.slice(0, 20)}`, sign(claims(), { kid }));
  }
  await refused(t, 'jku to an attacker', sign(claims(), { kid: 'evil', jku: 'https://evil.test/jwks.json' }, other.privateKey));
  await refused(t, 'x5u to an attacker', sign(claims(), { kid: 'evil', x5u: 'https://evil.test/c.pem' }, other.privateKey));
  const attackerJwk = await exportJWK(other.publicKey);
  await refused(t, 'embedded jwk', sign(claims(), { kid: undefined, jwk: attackerJwk }, other.privateKey));
});

t.test('ECDSA: another curve, r = s = 0 and other out-of-range signatures (5.03, 5.06; CVE-2022-21449 class)', async (t) => {
  await t.resolves(verifyIdToken(input(await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'e1' }).sign(ec.privateKey), ecInput)), 'control: a real ES256 token verifies');
  const body = `${b64({ alg: 'ES256', kid: 'e1', typ: 'JWT' })}.${b64(claims())}`;
  // "ES256" signed with SHA-256 by a key on another curve (raw r||s, as JWS encodes it).
  for (const curve of ['P-384', 'P-521', 'secp256k1']) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
    const sig = signRaw('sha256', Buffer.from(body), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    await refused(t, `ES256 signed by a ${curve} key, naming the published P-256 kid`, `${body}.${sig}`, ecInput, /signature/);
  }
  // secp256k1 is the curve most often mistaken for P-256: a 64-byte signature, the right length for ES256.
  const k256 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
  const k256Jwk = { ...(await exportJWK(k256.publicKey)), kid: 'k256' };
  const k256Body = `${b64({ alg: 'ES256', kid: 'k256' })}.${b64(claims())}`;
  await refused(t, 'ES256 with a secp256k1 key the JWKS publishes', `${k256Body}.${signRaw('sha256', Buffer.from(k256Body), { key: k256.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`,
    { algorithms: ['ES256'], getKey: createLocalJWKSet({ keys: [k256Jwk] }) });
  // "ES256" over the published P-384 key (the token picks a key of the wrong curve for its alg).
  const e384Body = `${b64({ alg: 'ES256', kid: 'e384' })}.${b64(claims())}`;
  const e384Sig = signRaw('sha256', Buffer.from(e384Body), { key: KeyObject.from(e384.privateKey), dsaEncoding: 'ieee-p1363' }).toString('base64url');
  await refused(t, 'ES256 naming the published P-384 key, signed by it', `${e384Body}.${e384Sig}`, ecInput);
  // r = s = 0 (the "psychic signature"), in JWS form and DER form, and r = s = n (the curve order).
  const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
  for (const [what, sig] of [
    ['r = s = 0 (64 zero bytes)', Buffer.alloc(64)],
    ['r = s = 0 (DER)', Buffer.from('3006020100020100', 'hex')],
    ['r = s = n', Buffer.concat([n, n])],
    ['r = 1, s = 0', Buffer.concat([Buffer.alloc(31), Buffer.from([1]), Buffer.alloc(32)])],
  ] as const) {
    await refused(t, `ES256 ${what}`, `${body}.${sig.toString('base64url')}`, ecInput);
  }
  // and the same zero signature claiming RS256 over the RSA key
  await refused(t, 'RS256 with an all-zero signature', `${b64({ alg: 'RS256', kid: 'k1' })}.${b64(claims())}.${Buffer.alloc(256).toString('base64url')}`, {}, /signature/);
});

t.test('duplicate JSON member names in the header or the payload are refused (5.06; RFC 7515 §5.2)', async (t) => {
  // Signed with the IdP's real key: the only thing wrong is the duplicate name. A parser that keeps
  // the first value would read another token than the one verified (alg none, another iss, sub).
  const rs = (text: string) => createSign('RSA-SHA256').update(text).sign(KeyObject.from(k1.privateKey)).toString('base64url');
  const raw = (json: string) => Buffer.from(json).toString('base64url');
  const payload = JSON.stringify(claims());
  const header = JSON.stringify({ alg: 'RS256', kid: 'k1', typ: 'JWT' });
  const signed = (h: string, p: string) => `${raw(h)}.${raw(p)}.${rs(`${raw(h)}.${raw(p)}`)}`;
  await t.resolves(verifyIdToken(input(signed(header, payload))), 'control: the same token without duplicates verifies');
  const cases: Array<[string, string, string]> = [
    ['two "alg" in the header (none, then RS256)', '{"alg":"none","kid":"k1","typ":"JWT","alg":"RS256"}', payload],
    ['two "kid" in the header', '{"alg":"RS256","kid":"other","typ":"JWT","kid":"k1"}', payload],
    ['two "iss" in the payload', header, payload.replace('{', `{"iss":"https://evil.test",`)],
    ['two "sub" in the payload ("a", then "admin")', header, payload.replace('"sub":"u-1"', '"sub":"a","sub":"admin"')],
    ['two "aud" in the payload', header, payload.replace('{', '{"aud":"other-client",')],
  ];
  for (const [name, h, p] of cases) await refused(t, name, signed(h, p));
});

t.test('nonce (5.11)', async (t) => {
  await refused(t, 'missing nonce', sign(claims({ nonce: undefined })), {}, /nonce/);
  await refused(t, 'wrong nonce', sign(claims({ nonce: 'N2' })), {}, /nonce/);
  await refused(t, 'a nonce when none was sent', sign(claims()), { nonce: undefined }, /nonce/);
  await t.resolves(verifyIdToken(input(await sign(claims({ nonce: undefined })), { allowMissingNonce: true })), 'device flow: the IdP may drop the nonce');
  await refused(t, 'device flow still checks a nonce that is present', sign(claims({ nonce: 'N2' })), { allowMissingNonce: true }, /nonce/);
});
