// The token audit events (pure): every revocation — `tollgate token revoke`, the supervisor's
// rotation, the admin API and a sign-out — goes through tokenRevokedEvent, and the stored row
// (canonical JSON) is byte for byte the one each caller used to build by hand.
import t from 'tap';
import { buildAuditEvent } from '../../../src/audit/build-audit-row.ts';
import { tokenIssuedEvent, tokenRevokedEvent } from '../../../src/identity/token-events.ts';
import type { TokenRecord } from '../../../src/store/token-store.ts';

const T0 = 1_800_000_000_000;
const record = (id: string, subject: string, kind: TokenRecord['kind'] = 'user'): TokenRecord => ({
  id, hash: 'ab'.repeat(32), kind, subject, teams: ['alpha'], createdAt: T0, expiresAt: T0 + 3_600_000,
  revokedAt: null, lastUsedAt: null, issuedBy: 'oidc:https://idp.example',
});
const ann1 = record('tok_00000000000000a1', 'ann@acme.example');
const ann2 = record('tok_00000000000000a2', 'ann@acme.example');
const bot = record('tok_00000000000000b1', 'bot', 'agent');
const row = (e: Parameters<typeof buildAuditEvent>[0]) => buildAuditEvent(e, T0);

t.test('the admin API\'s revocation: by admin_api, via, the target as asked', async (t) => {
  for (const [field, target, revoked] of [
    ['user', { kind: 'user', subject: 'ann@acme.example' }, [ann1, ann2]],
    ['agent', { kind: 'agent', subject: 'bot' }, [bot]],
    ['id', { id: 'tok_00000000000000a1' }, [ann1]],
    ['id', { id: 'tok_0000000000000000' }, []],
  ] as const) {
    const value = 'id' in target ? target.id : target.subject;
    const before = {
      type: 'token_revoked', actor: 'user:ada@acme.example',
      detail: { by: 'admin_api', via: 'session', target: { [field]: value }, token_ids: revoked.map((r) => r.id), subjects: [...new Set(revoked.map((r) => r.subject))] },
    };
    t.same(row(tokenRevokedEvent(target, revoked, 'user:ada@acme.example', { by: 'admin_api', via: 'session' })), row(before), `${field} ${value}`);
  }
  const viaToken = tokenRevokedEvent({ id: ann1.id }, [ann1], 'user:ada@acme.example', { by: 'admin_api', via: 'token' });
  t.equal(row(viaToken).detail, `{"by":"admin_api","subjects":["ann@acme.example"],"target":{"id":"${ann1.id}"},"token_ids":["${ann1.id}"],"via":"token"}`);
});

t.test('a sign-out: by logout, its own token, no via', async (t) => {
  const before = {
    type: 'token_revoked', actor: `${ann1.kind}:${ann1.subject}`,
    detail: { by: 'logout', target: { id: ann1.id }, token_ids: [ann1.id], subjects: [ann1.subject] },
  };
  const now = tokenRevokedEvent({ id: ann1.id }, [ann1], 'user:ann@acme.example', 'logout');
  t.same(row(now), row(before));
  t.equal(row(now).detail, `{"by":"logout","subjects":["ann@acme.example"],"target":{"id":"${ann1.id}"},"token_ids":["${ann1.id}"]}`);
});

t.test('the CLI and the supervisor: by cli / supervisor', async (t) => {
  t.equal(row(tokenRevokedEvent({ kind: 'user', subject: 'ann@acme.example' }, [ann1, ann2], 'cli:root', 'cli')).detail,
    `{"by":"cli","subjects":["ann@acme.example"],"target":{"user":"ann@acme.example"},"token_ids":["${ann1.id}","${ann2.id}"]}`);
  t.match(tokenRevokedEvent({ id: bot.id }, [bot], 'cli:root', 'supervisor'), { type: 'token_revoked', actor: 'cli:root', detail: { by: 'supervisor', target: { id: bot.id } } });
  t.match(tokenIssuedEvent(bot, 'cli:root', 'supervisor'), { type: 'token_issued', detail: { by: 'supervisor', token_id: bot.id, kind: 'agent', projects: null, roles: [] } });
});
