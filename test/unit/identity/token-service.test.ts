import t from 'tap';
import { createTokenService, hashToken } from '../../../src/identity/token-service.ts';
import { TOKEN_PATTERN } from '../../../src/identity/token-format.ts';
import { createMemoryTokenStore } from '../../../src/store/memory-token-store.ts';
import type { TokenStore } from '../../../src/store/token-store.ts';

const T0 = 1_800_000_000_000;
const H = 3_600_000;

/** Counts store reads so the cache can be observed. */
function counting(store: TokenStore): TokenStore & { reads: number; touches: number } {
  const c = Object.assign(Object.create(null) as object, store, { reads: 0, touches: 0 }) as TokenStore & { reads: number; touches: number };
  c.findByHash = async (h) => {
    c.reads++;
    return store.findByHash(h);
  };
  c.touch = async (id, now, min) => {
    c.touches++;
    return store.touch(id, now, min);
  };
  return c;
}

const issueUser = { kind: 'user' as const, subject: 'ana@acme.example', teams: ['sre'], issuedBy: 'test', now: T0 };

t.test('issue: token format, hash-only record, default 12 h', async (t) => {
  const store = createMemoryTokenStore();
  const svc = createTokenService(store);
  const { token, record } = await svc.issueToken(issueUser);
  t.match(token, TOKEN_PATTERN);
  t.equal(Buffer.from(token.slice(3), 'base64url').length, 32, '256 bits');
  t.equal(record.hash, hashToken(token));
  t.notOk(JSON.stringify(await store.list()).includes(token), 'the store never sees the token');
  t.match(record.id, /^tok_[0-9a-f]{16}$/);
  t.equal(record.expiresAt - record.createdAt, 12 * H);
  const other = await svc.issueToken(issueUser);
  t.not(other.token, token);
  t.not(other.record.id, record.id);
});

t.test('issue: invalid input refused with TOLLGATE_ERR_USAGE', async (t) => {
  const svc = createTokenService(createMemoryTokenStore(), { maxUserTtlMs: 24 * H });
  const bad = [
    { ...issueUser, teams: [] },
    { ...issueUser, teams: ['SRE'] },
    { ...issueUser, teams: ['sre', 'sre'] },
    { ...issueUser, subject: 'not-an-email' },
    { ...issueUser, subject: 'a b@c' },
    { ...issueUser, ttlMs: 0 },
    { ...issueUser, ttlMs: 25 * H },
    { ...issueUser, kind: 'agent' as const, subject: 'sre-monitor', teams: ['sre', 'backend'] },
    { ...issueUser, kind: 'agent' as const, subject: 'Bad Agent' },
    { ...issueUser, issuedBy: ' ' },
  ];
  for (const input of bad) await t.rejects(svc.issueToken(input), { code: 'TOLLGATE_ERR_USAGE' }, JSON.stringify(input));
  const agent = await svc.issueToken({ ...issueUser, kind: 'agent', subject: 'sre-monitor', ttlMs: 90 * 24 * H });
  t.equal(agent.record.expiresAt, T0 + 90 * 24 * H, 'agents may live longer');
});

t.test('verify: valid, unknown, malformed, expired, revoked', async (t) => {
  const svc = createTokenService(createMemoryTokenStore());
  const { token, record } = await svc.issueToken({ ...issueUser, ttlMs: H });
  t.match(await svc.verifyToken(token, T0 + 1), { ok: true, record: { id: record.id } });
  t.match(await svc.verifyToken(token, T0 + H - 1), { ok: true });
  t.match(await svc.verifyToken(token, T0 + H), { ok: false, reason: 'auth_invalid', rejection: 'expired', tokenId: record.id }, 'expires exactly at expiresAt');
  t.match(await svc.verifyToken('tg_' + 'x'.repeat(43), T0), { ok: false, rejection: 'unknown' });
  t.match(await svc.verifyToken('nope', T0), { ok: false, rejection: 'malformed' });
  t.match(await svc.verifyToken(token + 'x', T0), { ok: false, rejection: 'malformed' });
  t.match(await svc.verifyToken('x'.repeat(100_000), T0), { ok: false, rejection: 'malformed' });
  t.equal((await svc.revoke({ id: record.id }, T0 + 2)).length, 1);
  t.match(await svc.verifyToken(token, T0 + 3), { ok: false, reason: 'auth_invalid', rejection: 'revoked' }, 'in-process revocation is immediate');
});

t.test('cache: no store read within 1 s; another writer is seen within the bound', async (t) => {
  const base = createMemoryTokenStore();
  const store = counting(base);
  const svc = createTokenService(store);
  t.equal(svc.revocationBoundMs, 1000);
  const { token, record } = await svc.issueToken(issueUser);
  await svc.verifyToken(token, T0);
  for (let i = 0; i < 100; i++) await svc.verifyToken(token, T0 + 10 + i);
  t.equal(store.reads, 1, 'one read for 101 verifications within a second');
  // Revoked by someone else (another process): not seen through the cache until it expires.
  await base.revoke({ id: record.id }, T0 + 200);
  t.match(await svc.verifyToken(token, T0 + 999), { ok: true });
  t.match(await svc.verifyToken(token, T0 + 1000), { ok: false, rejection: 'revoked' });
  t.equal(store.reads, 2);
});

t.test('cacheTtlMs is capped at 1 s', async (t) => {
  const svc = createTokenService(createMemoryTokenStore(), { cacheTtlMs: 60_000 });
  t.equal(svc.revocationBoundMs, 1000);
});

t.test('last_used_at is written at most once per interval', async (t) => {
  const store = counting(createMemoryTokenStore());
  const svc = createTokenService(store, { touchIntervalMs: 60_000, cacheTtlMs: 0 });
  const { token, record } = await svc.issueToken(issueUser);
  for (let i = 0; i < 50; i++) await svc.verifyToken(token, T0 + i * 1000);
  t.equal(store.touches, 1);
  await svc.verifyToken(token, T0 + 61_000);
  t.equal(store.touches, 2);
  await new Promise((r) => setImmediate(r));
  t.equal((await store.findById(record.id))?.lastUsedAt, T0 + 61_000);
});

t.test('a failing touch does not fail verification', async (t) => {
  const base = createMemoryTokenStore();
  const errors: unknown[] = [];
  const store: TokenStore = { ...base, touch: async () => { throw new Error('disk full'); } };
  const svc = createTokenService(store, { onTouchError: (e) => errors.push(e) });
  const { token } = await svc.issueToken(issueUser);
  t.match(await svc.verifyToken(token, T0), { ok: true });
  await new Promise((r) => setImmediate(r));
  t.equal(errors.length, 1);
});

t.test('revoke by user drops every cached token of that user', async (t) => {
  const svc = createTokenService(createMemoryTokenStore());
  const a = await svc.issueToken(issueUser);
  const b = await svc.issueToken(issueUser);
  const c = await svc.issueToken({ ...issueUser, subject: 'bo@acme.example' });
  for (const x of [a, b, c]) t.match(await svc.verifyToken(x.token, T0), { ok: true });
  t.equal((await svc.revoke({ kind: 'user', subject: 'ana@acme.example' }, T0 + 1)).length, 2);
  t.match(await svc.verifyToken(a.token, T0 + 2), { ok: false, rejection: 'revoked' });
  t.match(await svc.verifyToken(b.token, T0 + 2), { ok: false, rejection: 'revoked' });
  t.match(await svc.verifyToken(c.token, T0 + 2), { ok: true });
  t.same((await svc.list({ kind: 'user', subject: 'bo@acme.example' })).map((r) => r.id), [c.record.id]);
});

t.test('a user is their e-mail lower-cased: issue, revoke and list by any case reach the same tokens', async (t) => {
  const svc = createTokenService(createMemoryTokenStore());
  const { token, record } = await svc.issueToken({ kind: 'user', subject: 'Alice@Acme.Example', teams: ['sre'], issuedBy: 'test', now: T0 });
  t.equal(record.subject, 'alice@acme.example', 'stored lower-cased, as SSO stores it');
  t.same((await svc.list({ kind: 'user', subject: 'ALICE@acme.example' })).map((r) => r.id), [record.id], 'listed by another case');
  t.same((await svc.list({ subject: 'Alice@ACME.example' })).map((r) => r.id), [record.id], 'also without a kind');
  const revoked = await svc.revoke({ kind: 'user', subject: 'aLiCe@acme.EXAMPLE' }, T0 + 1);
  t.same(revoked.map((r) => r.id), [record.id], 'an offboarding script typed in another case revokes it');
  t.match(await svc.verifyToken(token, T0 + 2), { ok: false, rejection: 'revoked' });
  const agent = await svc.issueToken({ kind: 'agent', subject: 'sre-bot', teams: ['sre'], issuedBy: 'test', now: T0 });
  t.equal(agent.record.subject, 'sre-bot', 'agent names as given (they are lower case by pattern)');
});
