// Owns: ending long-lived connections whose credentials stop being valid. Requests inside an
// intercepted tunnel are authenticated one by one, so a revocation reaches them on the next request;
// a pass-through tunnel or an upgraded WebSocket carries no further requests, so their credentials
// are verified again every `intervalMs` (TokenService's cache bounds how stale a verdict is) and a
// connection whose token was revoked, has expired or no longer resolves is ended. Each may also
// carry a policy re-check (the agent removed from org.yaml, the host no longer `direct`): run once
// after the connection is watched, then when the policy changes — at once after a reload
// (`recheckNow`) and at the ticks.
import { credentialsStillValid } from '../identity/authenticate-proxy-request.ts';
import { expiryNow } from '../identity/expiry-clock.ts';
import type { TokenService } from '../identity/token-service.ts';

export interface CredentialWatch {
  /**
   * Watches a connection opened with these Proxy-Authorization values; `end` closes it. `recheck`
   * says why the policy in force would no longer let it be opened (undefined while it would).
   * Returns the unwatch.
   */
  watch(proxyAuthorization: readonly string[], end: (why: string) => void, recheck?: () => string | undefined): () => void;
  /** Runs the checks now (after a policy reload) rather than at the next tick. */
  recheckNow(): Promise<void>;
  /** Connections watched now. */
  size(): number;
  close(): void;
}

interface Watched {
  auth: readonly string[];
  end: (why: string) => void;
  recheck: (() => string | undefined) | undefined;
  /** The policy version it was last re-checked against (NOT_YET: never). */
  checked: unknown;
}

const NOT_YET = Symbol('not re-checked yet');

/**
 * `policyVersion` names the policy in force (the compiled set: a new object per reload). With it, a
 * connection's policy re-check runs once after it is watched and then only when the version
 * changes — the answer cannot change otherwise — instead of at every tick.
 */
export function createCredentialWatch(deps: { tokens: TokenService; intervalMs?: number; now?: () => number; policyVersion?: () => unknown }): CredentialWatch {
  const intervalMs = deps.intervalMs ?? Math.max(250, deps.tokens.revocationBoundMs);
  const now = deps.now ?? expiryNow;
  const watched = new Set<Watched>();
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  const endOne = (w: Watched, why: string) => {
    if (!watched.delete(w)) return;
    try {
      w.end(why);
    } catch {
      // closing one connection must not stop the others
    }
  };

  const recheckPolicy = () => {
    const version = deps.policyVersion ? deps.policyVersion() : NOT_YET;
    for (const w of [...watched]) {
      if (!w.recheck || (version !== NOT_YET && w.checked === version)) continue;
      w.checked = version;
      let why: string | undefined;
      try {
        why = w.recheck();
      } catch (err) {
        // closed rather than kept on a verdict the policy cannot give
        why = `the policy re-check failed (${(err as Error).message})`;
      }
      if (why !== undefined) endOne(w, `policy no longer allows this connection: ${why}`);
    }
  };

  const tick = async () => {
    if (running) return; // a slow store: the next tick starts when this one is done
    running = true;
    try {
      recheckPolicy();
      // one verification per distinct header (many connections share a token)
      const groups = new Map<string, Watched[]>();
      for (const w of watched) {
        if (w.auth.length === 0) continue; // authenticated otherwise (a client certificate): policy only
        const key = w.auth.join('\n');
        const g = groups.get(key);
        if (g) g.push(w);
        else groups.set(key, [w]);
      }
      for (const g of groups.values()) {
        const first = g[0] as Watched;
        let verdict: Awaited<ReturnType<typeof credentialsStillValid>>;
        try {
          verdict = await credentialsStillValid(deps.tokens, first.auth, now());
        } catch {
          continue; // the token store could not answer: ask again at the next tick
        }
        if (verdict.ok) continue;
        const why = `credentials ${verdict.detail === 'revoked' || verdict.detail === 'expired' ? verdict.detail : 'no longer valid'}${verdict.tokenId ? ` (token ${verdict.tokenId})` : ''}`;
        for (const w of g) endOne(w, why);
      }
    } finally {
      running = false;
      if (watched.size === 0 && timer) {
        clearInterval(timer);
        timer = undefined;
      }
    }
  };

  return {
    watch(auth, end, recheck) {
      const w: Watched = { auth, end, recheck, checked: NOT_YET };
      watched.add(w);
      if (!timer) {
        timer = setInterval(() => void tick(), intervalMs);
        timer.unref();
      }
      return () => {
        watched.delete(w);
      };
    },
    recheckNow: () => {
      // the policy part at once, even while a tick waits on the token store
      recheckPolicy();
      return tick();
    },
    size: () => watched.size,
    close() {
      watched.clear();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
