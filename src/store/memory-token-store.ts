// Owns: the in-memory TokenStore twin for unit tests (same contract as the SQLite store).
import type { RevokeTarget, TokenFilter, TokenRecord, TokenStore } from './token-store.ts';

function copy(r: TokenRecord): TokenRecord {
  return Object.freeze({
    ...r, teams: Object.freeze([...r.teams]), projects: r.projects === undefined ? undefined : Object.freeze([...r.projects]),
    ...(r.roles === undefined ? {} : { roles: Object.freeze([...r.roles]) }),
  });
}

function matches(r: TokenRecord, f: TokenFilter): boolean {
  return (f.kind === undefined || r.kind === f.kind) && (f.subject === undefined || r.subject === f.subject);
}

export function createMemoryTokenStore(initial: readonly TokenRecord[] = []): TokenStore {
  const byId = new Map<string, TokenRecord>();
  const idByHash = new Map<string, string>();
  const put = (r: TokenRecord): void => {
    byId.set(r.id, copy(r));
    idByHash.set(r.hash, r.id);
  };
  for (const r of initial) put(r);

  return {
    async insert(record) {
      if (byId.has(record.id)) throw new Error(`token id ${record.id} already exists`);
      if (idByHash.has(record.hash)) throw new Error('token hash already exists');
      if (record.teams.length === 0 || (record.kind === 'agent' && record.teams.length !== 1)) {
        throw new Error('a token needs one team (agents) or at least one (users)');
      }
      if (!(record.expiresAt > record.createdAt)) throw new Error('expires_at must be after created_at');
      put(record);
    },
    async findByHash(hash) {
      const id = idByHash.get(hash);
      return id === undefined ? undefined : byId.get(id);
    },
    async findById(id) {
      return byId.get(id);
    },
    async list(filter = {}) {
      return [...byId.values()].filter((r) => matches(r, filter)).sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : 1));
    },
    async revoke(target: RevokeTarget, now) {
      const hit = 'id' in target
        ? [byId.get(target.id)].filter((r): r is TokenRecord => r !== undefined)
        : [...byId.values()].filter((r) => matches(r, target));
      const out: TokenRecord[] = [];
      for (const r of hit) {
        if (r.revokedAt !== null) continue;
        const next = copy({ ...r, revokedAt: now });
        byId.set(r.id, next);
        out.push(next);
      }
      return out;
    },
    async touch(id, now, minIntervalMs) {
      const r = byId.get(id);
      if (r === undefined) return false;
      if (r.lastUsedAt !== null && now - r.lastUsedAt < minIntervalMs && now >= r.lastUsedAt) return false;
      byId.set(id, copy({ ...r, lastUsedAt: now }));
      return true;
    },
    async prune(before) {
      let n = 0;
      for (const r of [...byId.values()]) {
        if (r.expiresAt < before || (r.revokedAt !== null && r.revokedAt < before)) {
          byId.delete(r.id);
          idByHash.delete(r.hash);
          n++;
        }
      }
      return n;
    },
  };
}
