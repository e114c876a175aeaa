// Owns: assembling single sign-on for the gateway — the issuers of `sso.issuers` (plus the
// embedded dev issuer in dev mode), the login service, admin sessions, `authenticateAdmin`, and
// the admin-listener routes. Called once by assembleGateway; everything else is built here so
// the composition root stays a list of parts.
import type { AdminRoute } from '../admin/admin-server.ts';
import { createAdminAuthenticator, type AuthenticateAdmin } from '../admin/admin-auth.ts';
import { createAdminSessions, type SessionTable } from '../admin/admin-sessions.ts';
import { createAuthRoutes } from '../admin/auth-routes.ts';
import type { GatewayConfig } from '../config/gateway-config.ts';
import type { Logger } from '../observability/logger.ts';
import type { OrgConfig } from '../policy/types.ts';
import { startDevIssuer, type DevIssuer, type DevIssuerOptions } from './dev-issuer.ts';
import { createLoginNonces } from './oidc/login-nonce.ts';
import { createIssuerRegistry, type OidcIssuerDeps } from './oidc/oidc-issuer.ts';
import type { IdentityBindings } from '../store/sqlite-identity-bindings.ts';
import { createSsoLogin, type SsoAuditHook, type SsoIdentityBinder } from './sso-login.ts';
import type { TokenService } from './token-service.ts';

export interface SsoRuntime {
  routes: AdminRoute[];
  /** For every /api/v1 route of the admin API: session cookie or an admin's bearer token. */
  authenticateAdmin: AuthenticateAdmin;
  /** The proxy listener's real address and the interception CA, once listening (told to `tollgate login`). */
  setGatewayInfo(info: { proxy: { host: string; port: number }; caPem: string }): void;
  devIssuer: DevIssuer | undefined;
  close(): Promise<void>;
}

export interface StartSsoOptions {
  dev: boolean;
  tokens: TokenService;
  org: () => OrgConfig;
  devIssuer?: DevIssuerOptions;
  issuerDeps?: OidcIssuerDeps;
  now?: () => number;
  /** Writes an event to the audit trail (sign-ins, logouts). */
  audit?: SsoAuditHook;
  /** Where admin sessions are kept (the gateway: tollgate.db); default in memory. */
  sessionTable?: SessionTable;
  /** Which account holds each e-mail address (the gateway: tollgate.db); default: addresses are not bound. */
  identities?: IdentityBindings;
}

export async function startSso(config: GatewayConfig, logger: Logger, opts: StartSsoOptions): Promise<SsoRuntime> {
  const devIssuer = opts.dev ? await startDevIssuer({ host: config.listen.admin.host === 'localhost' ? '127.0.0.1' : config.listen.admin.host, ...opts.devIssuer }) : undefined;
  const issuerSettings = [...config.sso.issuers, ...(devIssuer ? [devIssuer.settings] : [])];
  if (devIssuer) {
    logger.warn('dev mode: embedded OIDC issuer with demo users (no passwords); never use it in production', {
      issuer: devIssuer.issuer, users: devIssuer.users.map((u) => `${u.email} (${u.groups.join(', ')})`),
    });
  }
  // The embedded dev issuer is in this process: it is always called directly, never through
  // `upstream_proxy` (the outbound fetch in issuerDeps).
  const { fetch: outboundFetch, ...localDeps } = { ...opts.issuerDeps, ...(opts.now ? { now: opts.now } : {}) };
  const issuers = createIssuerRegistry(issuerSettings, (s) => (devIssuer && s === devIssuer.settings ? localDeps : { ...localDeps, ...(outboundFetch ? { fetch: outboundFetch } : {}) }));
  // A stored session counts only while its issuer is configured (removing a compromised issuer, or
  // leaving dev mode, ends its sessions at once) and within the current session_ttl.
  const issuerNames = new Set(issuers.list().map((i) => i.settings.issuer)); // a session keeps the token's `iss`
  const sessions = createAdminSessions({
    ttlMs: config.sso.sessionTtlMs, accept: (s) => issuerNames.has(s.issuer), ...(opts.sessionTable ? { table: opts.sessionTable } : {}),
  });
  const nonces = createLoginNonces();
  // Addresses held by an account of an issuer configured now are kept from every other account. The
  // embedded dev issuer binds nothing: it moves port (so its iss) at each start, and holds only demo users.
  const bindings = opts.identities;
  const identities: SsoIdentityBinder | undefined = bindings && {
    bind: (identity, at) => (devIssuer && identity.issuer === devIssuer.issuer ? { ok: true } : bindings.bind({ issuer: identity.issuer, subject: identity.subject, email: identity.email }, at, issuerNames)),
  };
  const login = createSsoLogin({
    issuers, tokens: opts.tokens, ...(identities ? { identities } : {}), org: opts.org, nonces, logger, tokenTtlMs: config.sso.tokenTtlMs,
    ...(opts.now ? { now: opts.now } : {}), ...(opts.audit ? { audit: opts.audit } : {}),
  });
  let proxy: { host: string; port: number } | undefined;
  let caPem: string | undefined;
  const routes = createAuthRoutes({
    issuers, login, sessions, tokens: opts.tokens, nonces, org: opts.org, logger,
    proxyAddress: () => proxy, caPem: () => caPem, publicUrl: config.sso.publicUrl, proxyUrl: config.sso.proxyUrl, ...(opts.now ? { now: opts.now } : {}),
    ...(opts.audit ? { audit: opts.audit } : {}),
  });
  const authenticateAdmin = createAdminAuthenticator({ tokens: opts.tokens, sessions, org: opts.org, publicUrl: config.sso.publicUrl, ...(opts.now ? { now: opts.now } : {}) });
  // Warm the discovery caches; an IdP that is down only delays sign-in, never the gateway.
  for (const i of issuers.list()) {
    i.metadata().catch((err: unknown) => logger.warn('identity provider not reachable yet', { issuer: i.settings.name, detail: String((err as { detail?: string }).detail ?? err) }));
  }
  return {
    routes,
    authenticateAdmin,
    setGatewayInfo: (info) => {
      proxy = info.proxy;
      caPem = info.caPem;
    },
    devIssuer,
    close: async () => {
      await devIssuer?.close();
    },
  };
}
