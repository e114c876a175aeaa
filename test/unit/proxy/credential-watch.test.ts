// The credential watch: connections are ended once their token stops verifying (revoked, expired,
// unknown), each distinct header is verified once per tick, a token store that throws ends nothing,
// and the timer stops when nothing is watched.
import t from 'tap';
import { createCredentialWatch } from '../../../src/proxy/credential-watch.ts';
import type { TokenService } from '../../../src/identity/token-service.ts';

const TOKEN_A = `tg_${'A'.repeat(43)}`;
const TOKEN_B = `tg_${'B'.repeat(43)}`;
const header = (token: string) => [`Basic ${Buffer.from(`alpha:${token}`).toString('base64')}`];
const record = (id: string) => ({ id, hash: 'h', kind: 'agent', subject: 'alpha-bot', teams: ['alpha'], projects: undefined, createdAt: 0, expiresAt: Number.MAX_SAFE_INTEGER, revokedAt: null, lastUsedAt: null, issuedBy: 'test' });

function fakeTokens(state: Map<string, 'ok' | 'revoked' | 'expired' | 'throw'>) {
  const calls: string[] = [];
  const tokens = {
    revocationBoundMs: 1000,
    async verifyToken(token: string) {
      calls.push(token);
      const s = state.get(token) ?? 'ok';
      if (s === 'throw') throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
      if (s === 'ok') return { ok: true, record: record(token === TOKEN_A ? 'tok_a' : 'tok_b') };
      return { ok: false, reason: 'auth_invalid', rejection: s, message: 'no', tokenId: token === TOKEN_A ? 'tok_a' : 'tok_b' };
    },
  } as unknown as TokenService;
  return { tokens, calls };
}

const tick = () => new Promise((r) => setTimeout(r, 30));

t.test('ends the connections of a revoked token only, verifying each header once per tick', async (t) => {
  const state = new Map<string, 'ok' | 'revoked' | 'expired' | 'throw'>();
  const { tokens, calls } = fakeTokens(state);
  const watch = createCredentialWatch({ tokens, intervalMs: 10 });
  t.teardown(() => watch.close());
  const ended: string[] = [];
  watch.watch(header(TOKEN_A), (why) => ended.push(`a1 ${why}`));
  watch.watch(header(TOKEN_A), (why) => ended.push(`a2 ${why}`));
  watch.watch(header(TOKEN_B), (why) => ended.push(`b ${why}`));
  await tick();
  t.same(ended, [], 'valid: nothing ended');
  t.ok(calls.filter((c) => c === TOKEN_A).length <= calls.filter((c) => c === TOKEN_B).length + 1, 'one verification per header per tick, not per connection');
  state.set(TOKEN_A, 'revoked');
  await tick();
  t.same(ended.sort(), ['a1 credentials revoked (token tok_a)', 'a2 credentials revoked (token tok_a)']);
  t.equal(watch.size(), 1, 'the revoked ones are no longer watched');
  state.set(TOKEN_B, 'expired');
  await tick();
  t.same(ended.filter((e) => e.startsWith('b')), ['b credentials expired (token tok_b)'], 'expiry ends it too, once');
  t.equal(watch.size(), 0);
  const n = calls.length;
  await tick();
  t.equal(calls.length, n, 'nothing watched: the timer stopped');
});

t.test('a store that cannot answer ends nothing; unwatch stops watching', async (t) => {
  const state = new Map<string, 'ok' | 'revoked' | 'expired' | 'throw'>([[TOKEN_A, 'throw']]);
  const { tokens } = fakeTokens(state);
  const watch = createCredentialWatch({ tokens, intervalMs: 10 });
  t.teardown(() => watch.close());
  const ended: string[] = [];
  watch.watch(header(TOKEN_A), (why) => ended.push(why));
  const unwatch = watch.watch(header(TOKEN_B), (why) => ended.push(why));
  await tick();
  t.same(ended, [], 'a busy store is asked again later, not taken as a revocation');
  unwatch();
  state.set(TOKEN_B, 'revoked');
  await tick();
  t.same(ended, [], 'unwatched: not ended');
  state.set(TOKEN_A, 'revoked');
  await tick();
  t.same(ended, ['credentials revoked (token tok_a)']);
});

t.test('a policy re-check ends the connections it no longer admits, at the tick or at once on recheckNow', async (t) => {
  const { tokens } = fakeTokens(new Map());
  const watch = createCredentialWatch({ tokens, intervalMs: 60_000 }); // no tick during the test: recheckNow only
  t.teardown(() => watch.close());
  const ended: string[] = [];
  let removed = false;
  let throwing = false;
  watch.watch(header(TOKEN_A), (why) => ended.push(`a ${why}`), () => (removed ? 'Agent "alpha-bot" is not an agent of team alpha' : undefined));
  watch.watch(header(TOKEN_A), (why) => ended.push(`kept ${why}`), () => undefined);
  watch.watch(header(TOKEN_B), (why) => ended.push(`b ${why}`), () => { if (throwing) throw new Error('boom'); return undefined; });
  watch.watch([], (why) => ended.push(`cert ${why}`), () => (removed ? 'denied' : undefined)); // no header: policy only
  await watch.recheckNow();
  t.same(ended, [], 'still admitted: nothing ended');
  removed = true;
  throwing = true;
  await watch.recheckNow();
  t.same(ended.sort(), [
    'a policy no longer allows this connection: Agent "alpha-bot" is not an agent of team alpha',
    'b policy no longer allows this connection: the policy re-check failed (boom)',
    'cert policy no longer allows this connection: denied',
  ], 'the ones the policy no longer admits, with its reason; a re-check that throws closes too (fail closed)');
  t.equal(watch.size(), 1);
});

t.test('with a policy version: re-checked once when watched, then only when the version changes — at once on recheckNow, even during a slow tick', async (t) => {
  let release: (() => void) | undefined;
  const slow = {
    revocationBoundMs: 1000,
    verifyToken: () => new Promise((r) => { release = () => r({ ok: true, record: record('tok_a') }); }),
  } as unknown as TokenService;
  let version = { generation: 1 };
  const watch = createCredentialWatch({ tokens: slow, intervalMs: 10, policyVersion: () => version });
  t.teardown(() => watch.close());
  let checks = 0;
  let denied = false;
  const ended: string[] = [];
  watch.watch(header(TOKEN_A), (why) => ended.push(why), () => { checks++; return denied ? 'denied now' : undefined; });
  await tick(); // the first tick re-checks it once, then waits on the slow token store
  t.equal(checks, 1, 'checked once after it was watched');
  await tick();
  t.equal(checks, 1, 'not again while the version stays (the tick is still waiting on the store)');
  version = { generation: 2 };
  denied = true;
  const before = Date.now();
  void watch.recheckNow();
  t.same(ended, ['policy no longer allows this connection: denied now'], 'closed at once by recheckNow, although a tick was still running');
  t.ok(Date.now() - before < 50);
  t.equal(checks, 2);
  release?.();
});
