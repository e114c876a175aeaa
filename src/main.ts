// Owns: the composition root — builds every object from the validated config, wires the
// pipeline stages in order, and starts the listeners. No request logic lives here.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { createAdminServer, type AdminRoute } from './admin/admin-server.ts';
import { startSso } from './identity/start-sso.ts';
import { startPolicyReloader } from './config/policy-reloader.ts';
import { createSecretSource } from './credentials/secret-source.ts';
import { createAuthFailureLimiter } from './identity/auth-failure-limiter.ts';
import { createTokenService } from './identity/token-service.ts';
import { addressAllowedByRule } from './policy/decide.ts';
import { authenticateStage } from './stages/authenticate.ts';
import { limitPrincipalStage } from './stages/limit-principal.ts';
import { createPrincipalLimits } from './limits/principal-limits.ts';
import { decidePolicyStage, noLongerAllowed } from './stages/decide-policy.ts';
import { injectCredentialsStage } from './stages/inject-credentials.ts';
import { meteringStageFromConfig } from './stages/meter-llm.ts';
import { auditDecisionStage, auditExchangeEnd } from './stages/audit-decision.ts';
import { createSqliteAuditSink, type SqliteAuditSink } from './audit/sqlite-audit-sink.ts';
import { buildAuditEvent } from './audit/build-audit-row.ts';
import { belowPatchedFloor } from './node-floor.ts';
import { guardConnectionFile } from './store/file-identity.ts';
import { openDatabase } from './store/database.ts';
import { createSqliteTokenStore } from './store/sqlite-token-store.ts';
import { databasePath, type GatewayConfig } from './config/gateway-config.ts';
import { TollgateError } from './errors.ts';
import { logExchange } from './observability/exchange-log.ts';
import type { Logger } from './observability/logger.ts';
import type { Exchange, Stage } from './proxy/exchange.ts';
import { createProxyServer } from './proxy/proxy-server.ts';
import { resolveTargetStage } from './stages/resolve-target.ts';
import { ensureCertificateAuthority, type CertificateAuthority } from './tls/certificate-authority.ts';
import { createLeafMinter } from './tls/leaf-minter.ts';
import { createUpstreamTrust, type DialOptions } from './upstream/connector.ts';
import { createConnectionTrust } from './upstream/connection-trust.ts';
import { createOutboundDispatcher, fetchVia } from './upstream/outbound-dispatcher.ts';
import { sqliteSessionTable } from './store/sqlite-admin-sessions.ts';
import { sqliteIdentityBindings } from './store/sqlite-identity-bindings.ts';
import { createCredentialWatch, type CredentialWatch } from './proxy/credential-watch.ts';
import { createHostResolver } from './upstream/resolver.ts';
import { createUpstreamPools } from './upstream/upstream-pools.ts';
import { labelSetsFromConfig } from './metrics/label-sets.ts';
import { createMetricCatalogue, type MetricCatalogue } from './metrics/metric-catalogue.ts';
import { metricsRoute } from './metrics/metrics-route.ts';
import { exchangeRecorder } from './metrics/record-exchange.ts';
import { budgetStatus } from './ledger/budget-status.ts';
import { createAdminApi } from './admin/admin-api.ts';
import { createDashboardRoutes } from './admin/dashboard-routes.ts';
import { readStatusFile, statusFilePath } from './agents/agent-status.ts';
import { createWorkerReportingReader } from './store/reporting-reader.ts';
import { webhookNotifierFromConfig } from './alerts/webhook-notifier.ts';

export interface RunningGateway {
  proxy: { host: string; port: number };
  admin: { host: string; port: number };
  ca: CertificateAuthority;
  stop(deadlineMs?: number): Promise<void>;
}

const SYSTEM_CA_FILES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/** The trust store for upstream TLS: Node's bundled roots, the system bundle, and `tls.upstream_ca`. */
export function upstreamTrust(config: GatewayConfig): string[] {
  const cas = [...tls.rootCertificates];
  const system = SYSTEM_CA_FILES.find((f) => existsSync(f));
  if (system) cas.push(readFileSync(system, 'utf8'));
  for (const file of config.tls.upstreamCa) {
    try {
      cas.push(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new TollgateError('TOLLGATE_ERR_CONFIG_INVALID', `tls.upstream_ca: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return cas;
}

/**
 * Host names the admin listener answers to (DNS-rebinding guard): loopback names, the address it
 * listens on, and the host of `sso.public_url`.
 */
export function adminHostNames(config: GatewayConfig): string[] {
  const names: string[] = [];
  const listen = config.listen.admin.host;
  if (listen !== '0.0.0.0' && listen !== '::') names.push(listen.includes(':') ? `[${listen}]` : listen.toLowerCase());
  if (config.sso.publicUrl) {
    try {
      names.push(new URL(config.sso.publicUrl).hostname.toLowerCase());
    } catch {
      // validated at load
    }
  }
  return names;
}

/**
 * The admin listener beyond loopback must not serve anything unauthenticated but health: every
 * /api/v1 route needs an admin, and /metrics then needs `metrics.bearer_token_secret` (7.11).
 */
export function assertAdminExposureSafe(config: GatewayConfig): void {
  const host = config.listen.admin.host;
  const loopback = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host);
  if (!loopback && config.metrics.bearerTokenSecret === undefined) {
    throw new TollgateError('TOLLGATE_ERR_STARTUP_UNSAFE', `listen.admin is ${host}, beyond loopback, but /metrics has no authentication; set metrics.bearer_token_secret (or keep the admin listener on loopback)`);
  }
}

/**
 * Refuses settings that silently weaken the gateway (security case 7.11 / 2.16), and a Node.js below
 * the patched floor of its line (node-floor.ts) unless TOLLGATE_ALLOW_UNPATCHED_NODE=1, when the
 * problem is returned to be logged as an error at every start.
 */
export function assertSafeRuntime(env: NodeJS.ProcessEnv, execArgv: readonly string[], nodeVersion: string = process.versions.node): string[] {
  const warnings: string[] = [];
  const outdated = belowPatchedFloor(nodeVersion);
  if (outdated !== undefined) {
    if (env['TOLLGATE_ALLOW_UNPATCHED_NODE'] !== '1') {
      throw new TollgateError('TOLLGATE_ERR_STARTUP_UNSAFE', `${outdated} (or set TOLLGATE_ALLOW_UNPATCHED_NODE=1 to start anyway)`);
    }
    warnings.push(`${outdated}; starting anyway because TOLLGATE_ALLOW_UNPATCHED_NODE=1`);
  }
  if (env['NODE_TLS_REJECT_UNAUTHORIZED'] === '0') {
    throw new TollgateError('TOLLGATE_ERR_STARTUP_UNSAFE', 'NODE_TLS_REJECT_UNAUTHORIZED=0 disables upstream certificate checks; unset it (add test CAs with tls.upstream_ca instead)');
  }
  const opts = `${env['NODE_OPTIONS'] ?? ''} ${execArgv.join(' ')}`;
  if (/--insecure-http-parser/.test(opts)) {
    throw new TollgateError('TOLLGATE_ERR_STARTUP_UNSAFE', '--insecure-http-parser allows request smuggling; remove it from NODE_OPTIONS');
  }
  return warnings;
}

export interface GatewayParts {
  /** Extra admission stages, in order, before address resolution (identity, policy). */
  tunnelStages: Stage[];
  requestStages: Stage[];
  /** Stages after the address is vetted (credential injection, budgets). */
  requestStagesAfterResolve: Stage[];
  /** Tunnel stages after the address is vetted (the audit decision stage: keep it last). */
  tunnelStagesAfterResolve?: Stage[];
  ruleAllowsAddress: Parameters<typeof resolveTargetStage>[0]['ruleAllows'];
  readiness: () => Array<{ name: string; ok: boolean; detail?: string }>;
  onExchangeEnd?: (ex: Exchange) => void;
  close?: () => Promise<void> | void;
  /** Routes mounted on the admin listener (sign-in, admin API). */
  adminRoutes?: AdminRoute[];
  /** The metric catalogue: startGateway plugs in the proxy, leaf minter and pool stats. */
  metrics?: MetricCatalogue;
  /** Upstream trust pinned per host (org.yaml connections with `ca:`). */
  pinnedTrust?: DialOptions['pinnedTrust'];
  /** The upstream trust when the caller built it already (else built from config). */
  trust?: tls.SecureContext;
  /** Ends pass-through tunnels and WebSockets whose token is revoked or expires. */
  credentialWatch?: CredentialWatch;
  /** Why the policy in force would no longer admit a watched connection (see ProxyServerDeps). */
  noLongerAllowed?: (ex: Exchange) => string | undefined;
}

export async function startGateway(config: GatewayConfig, logger: Logger, parts: GatewayParts): Promise<RunningGateway> {
  for (const w of assertSafeRuntime(process.env, process.execArgv)) logger.error('unsafe runtime', { problem: w });
  assertAdminExposureSafe(config);
  const { ca, created } = await ensureCertificateAuthority(config.ca.cert, config.ca.key);
  if (created) logger.info('created a new interception CA', { cert: config.ca.cert, fingerprint: ca.fingerprint });
  const minter = await createLeafMinter(ca);
  const resolver = createHostResolver({ upstreams: config.upstreams, servers: config.dns.servers, timeoutMs: config.dns.timeoutMs });
  const dialOptions = {
    connectTimeoutMs: config.timeouts.connectMs,
    trust: parts.trust ?? createUpstreamTrust(upstreamTrust(config)),
    pinnedTrust: parts.pinnedTrust,
    upstreamProxy: config.upstreamProxy ? new URL(config.upstreamProxy) : undefined,
  };
  const pools = createUpstreamPools({ ...dialOptions, headersTimeoutMs: config.timeouts.firstByteMs, bodyTimeoutMs: config.timeouts.idleMs });
  const ownPorts = new Set<number>();
  const resolveTarget = resolveTargetStage({ resolver, ownPorts: () => ownPorts, ruleAllows: parts.ruleAllowsAddress });
  const proxy = createProxyServer({
    logger,
    minter,
    pools,
    dialOptions,
    stages: {
      tunnel: [...parts.tunnelStages, resolveTarget, ...(parts.tunnelStagesAfterResolve ?? [])],
      request: [...parts.requestStages, resolveTarget, ...parts.requestStagesAfterResolve],
    },
    onExchangeEnd: (ex) => {
      logExchange(logger, ex);
      parts.onExchangeEnd?.(ex);
    },
    timeouts: { headersMs: config.timeouts.headersMs, idleMs: config.timeouts.idleMs, firstByteMs: config.timeouts.firstByteMs, handshakeMs: config.timeouts.headersMs },
    maxHeaderBytes: config.limits.maxHeaderBytes,
    maxConnections: config.limits.maxConnections,
    ...(parts.credentialWatch ? { credentialWatch: parts.credentialWatch } : {}),
    ...(parts.noLongerAllowed ? { noLongerAllowed: parts.noLongerAllowed } : {}),
  });
  parts.metrics?.observe({ proxy: () => proxy.stats(), leafCerts: () => minter.stats(), upstreamPools: () => pools.size() });
  let listening = false;
  const admin = createAdminServer({
    routes: parts.adminRoutes ?? [],
    allowedHosts: adminHostNames(config),
    readiness: () => [
      { name: 'proxy_listener', ok: listening },
      { name: 'ca', ok: ca.notAfter.getTime() > Date.now(), detail: `expires ${ca.notAfter.toISOString()}` },
      ...parts.readiness(),
    ],
  });
  let proxyAddr: { host: string; port: number };
  let adminAddr: { host: string; port: number };
  try {
    proxyAddr = await proxy.listen(config.listen.proxy.host, config.listen.proxy.port);
    ownPorts.add(proxyAddr.port);
    adminAddr = await admin.listen(config.listen.admin.host, config.listen.admin.port);
    ownPorts.add(adminAddr.port);
  } catch (err) {
    await proxy.shutdown(0);
    await pools.close();
    throw new TollgateError('TOLLGATE_ERR_LISTEN', `cannot listen: ${(err as Error).message}`, { cause: err });
  }
  listening = true;
  logger.info('tollgate listening', { proxy: `${proxyAddr.host}:${proxyAddr.port}`, admin: `${adminAddr.host}:${adminAddr.port}`, ca_fingerprint: ca.fingerprint });
  return {
    proxy: proxyAddr,
    admin: adminAddr,
    ca,
    async stop(deadlineMs = config.timeouts.shutdownMs) {
      listening = false;
      logger.info('shutting down', { deadline_ms: deadlineMs });
      await proxy.shutdown(deadlineMs);
      await admin.close();
      await pools.close();
      await parts.close?.();
      logger.info('stopped');
    },
  };
}

/** Dev mode (demo users, embedded issuer) never listens beyond loopback. */
export function assertLoopbackOnly(config: GatewayConfig): void {
  for (const [name, addr] of Object.entries(config.listen)) {
    if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(addr.host)) {
      throw new TollgateError('TOLLGATE_ERR_STARTUP_UNSAFE', `dev mode refuses to listen on ${addr.host} (listen.${name}); use a loopback address or run without --dev`);
    }
  }
}

/** Builds the identity and policy parts from the config and starts the gateway. */
export async function assembleGateway(config: GatewayConfig, logger: Logger, opts: { dev: boolean }): Promise<RunningGateway> {
  if (opts.dev) assertLoopbackOnly(config);
  const secrets = createSecretSource({ envPrefix: config.secrets.envPrefix, dir: config.secrets.dir });
  // In production a binding to a secret with no value is a startup error (fail closed). In dev mode
  // it is a warning, and the bound host answers 503 "secret not configured" until the value is set.
  const missingSecrets = new Set<string>();
  let audit: SqliteAuditSink | undefined;
  const metrics = createMetricCatalogue();
  // TLS to a host of an org.yaml connection with `ca:` trusts exactly that CA (re-read on reload).
  const connectionTrust = createConnectionTrust({ orgDir: path.dirname(config.org) });
  let afterPolicyReload: () => Promise<void> = async () => {};
  const policy = startPolicyReloader({
    orgFile: config.org,
    policiesDir: config.policies,
    allowNonPublicWidening: config.policyReload.allowNonPublic,
    secretExists: (name) => {
      if (secrets.has(name)) return true;
      missingSecrets.add(name);
      return opts.dev;
    },
    logger,
    onReload: (e) => {
      // open pass-through tunnels and WebSockets the new policy no longer admits are ended now
      if (e.ok) void afterPolicyReload();
      if (e.ok) for (const problem of connectionTrust.reload(policy.current().org)) logger.error('connection CA not reloaded; its last good certificates stay in force', { problem });
      metrics.notePolicyReload(e.ok);
      audit?.event(buildAuditEvent({
        type: e.ok ? 'policy_reloaded' : 'policy_rejected', actor: 'gateway',
        detail: { trigger: e.trigger, generation: e.generation, problems: e.problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`) },
      }, Date.now()));
    },
  });
  // Everything opened from here on is closed in reverse order, on stop and on a failed start.
  const cleanup: Array<() => unknown> = [() => policy.close()];
  const closeAll = async () => {
    for (const f of cleanup.splice(0).reverse()) {
      try {
        await f();
      } catch (err) {
        logger.error('cleanup failed', { error: String(err) });
      }
    }
  };
  try {
    return await assembleParts();
  } catch (err) {
    await closeAll();
    throw err;
  }

  async function assembleParts(): Promise<RunningGateway> {
    connectionTrust.load(policy.current().org);
    if (missingSecrets.size > 0) {
      logger.warn('dev mode: these secrets have no value; requests that need them get 503', {
        secrets: [...missingSecrets].sort(),
        how: `set ${config.secrets.envPrefix}<NAME> or write ${config.secrets.dir}/<name>`,
      });
    }
    // This connection is used on the proxy's event loop (token checks, budget reservations): a
    // short busy timeout bounds how long a lock held elsewhere can stall every connection; past
    // it, metered requests fail closed with 503 budget_unavailable.
    const db = openDatabase(databasePath(config), { busyTimeoutMs: 250 });
    cleanup.push(() => db.close());
    // Never checkpoint the WAL on the proxy's event loop: the audit writer thread does it.
    db.pragma('wal_autocheckpoint = 0');
    // The file deleted or replaced while running (security case 7.09): this connection stops writing
    // (token use, revocations, sessions fail with an error rather than vanish); the audit writer
    // fails every decision closed and /readyz says why.
    const dbGuard = guardConnectionFile(db, databasePath(config), (change, movedAside) => logger.error(
      'the database file was deleted or replaced while the gateway ran; the proxy thread\'s connection is read-only until a restart',
      { file: databasePath(config), change, moved_aside: movedAside },
    ));
    cleanup.push(() => dbGuard.stop());
    audit = createSqliteAuditSink({
      file: databasePath(config), logger: logger.child({ component: 'audit' }),
      retentionDays: config.audit.retentionDays, groupCommitMs: config.audit.groupCommitMs,
      busyTimeoutMs: config.audit.busyTimeoutMs, walCapBytes: config.audit.walCapBytes,
    });
    const auditSink = audit;
    cleanup.push(() => auditSink.close());
    const recordExchange = exchangeRecorder(metrics, labelSetsFromConfig(config, () => policy.current().org.teams));
    // Reservations and settlements run on the audit writer's thread (the one connection that writes).
    const spend = auditSink.ledger;
    metrics.observe({
      audit: () => auditSink.status(),
      policy: () => policy.status(),
      budgets: () => budgetStatus(spend, policy.current().org, Date.now(), { only: (scope) => !scope.startsWith('user:') }),
    });
    const metricsSecret = config.metrics.bearerTokenSecret;
    if (metricsSecret !== undefined && !secrets.has(metricsSecret)) logger.warn('metrics.bearer_token_secret has no value; GET /metrics answers 503 until it is set', { secret: metricsSecret });
    const auditEnd = auditExchangeEnd({ sink: auditSink });
    const auditStage = auditDecisionStage({ sink: auditSink, failOpenNonMetered: config.audit.failOpenNonMetered, logger });
    const tokens = createTokenService(createSqliteTokenStore(db, { beforeWrite: dbGuard.check }), {
      onTouchError: (err) => logger.warn('cannot record token use', { error: String(err) }),
    });
    const limiter = createAuthFailureLimiter();
    const credentialWatch = createCredentialWatch({ tokens, policyVersion: () => policy.current() });
    cleanup.push(() => credentialWatch.close());
    afterPolicyReload = () => credentialWatch.recheckNow();
    // One upstream trust (parsing the roots costs ~100 ms of CPU) for proxied traffic and for the
    // gateway's own calls out (IdP, webhooks), which leave through upstream_proxy too.
    const trust = createUpstreamTrust(upstreamTrust(config));
    const outbound = createOutboundDispatcher({ connectTimeoutMs: config.timeouts.connectMs, trust, upstreamProxy: config.upstreamProxy ? new URL(config.upstreamProxy) : undefined });
    cleanup.push(() => outbound.close());
    const sso = await startSso(config, logger, {
      dev: opts.dev, tokens, org: () => policy.current().org, issuerDeps: { fetch: fetchVia(outbound) }, sessionTable: sqliteSessionTable(db, { beforeWrite: dbGuard.check }), identities: sqliteIdentityBindings(db, { beforeWrite: dbGuard.check }),
      audit: (e) => auditSink.event(buildAuditEvent(e, Date.now())),
    });
    cleanup.push(() => sso.close());
    const authenticate = authenticateStage({ tokens, limiter });
    const limitPrincipal = limitPrincipalStage({ limits: createPrincipalLimits(config.limits.perPrincipal) });
    const decidePolicy = decidePolicyStage(policy.current);
    // Admin API reads run on their own thread (started on first use), never on the proxy's loop.
    const reporting = createWorkerReportingReader({ file: databasePath(config), busyTimeoutMs: config.audit.busyTimeoutMs });
    cleanup.push(() => reporting.close());
    const adminApi = createAdminApi({
      authenticate: sso.authenticateAdmin, reader: reporting, budgets: (now) => budgetStatus(spend, policy.current().org, now),
      policy: () => policy.status(), agents: () => readStatusFile(statusFilePath(config.dataDir)), tokens,
      audit: (e) => auditSink.event(buildAuditEvent(e, Date.now())), logger: logger.child({ component: 'admin-api' }),
    });
    // Threshold webhooks: queued in tollgate.db, posted off the request path (docs/metering.md).
    const alerts = webhookNotifierFromConfig({ db, config, secrets, logger: logger.child({ component: 'alerts' }), dispatcher: outbound,
      onGiveUp: (i) => auditSink.event(buildAuditEvent({ type: 'alert_failed', actor: 'gateway', detail: { ...i } }, Date.now())) });
    let alertsStarted = false;
    cleanup.push(() => alerts.close(alertsStarted ? undefined : 0));
    const onHup = () => { policy.reload('SIGHUP'); };
    process.on('SIGHUP', onHup);
    cleanup.push(() => process.off('SIGHUP', onHup));
    await auditSink.ready;
    const running = await startGateway(config, logger, {
      adminRoutes: [...sso.routes, metricsRoute({ registry: metrics.registry, bearerToken: metricsSecret === undefined ? undefined : () => secrets.get(metricsSecret) }),
        adminApi, ...createDashboardRoutes({ authenticate: sso.authenticateAdmin })],
      metrics,
      pinnedTrust: (host) => connectionTrust.choose(host),
      trust,
      credentialWatch,
      noLongerAllowed: (ex) => noLongerAllowed(policy.current(), ex),
      tunnelStages: [authenticate, limitPrincipal, decidePolicy],
      requestStages: [authenticate, limitPrincipal, decidePolicy],
      // auditStage stays LAST: the decision row is committed just before the first byte goes upstream.
      requestStagesAfterResolve: [injectCredentialsStage({ secrets, current: policy.current }), meteringStageFromConfig({ ledger: spend, config, logger, current: policy.current,
        onThreshold: (e) => { logger.warn('budget threshold', { ...e }); auditSink.event(buildAuditEvent({ type: 'budget_threshold', actor: 'gateway', detail: { ...e } }, Date.now())); alerts.notifyThreshold(e); } }), auditStage],
      tunnelStagesAfterResolve: [auditStage],
      onExchangeEnd: (ex) => { auditEnd(ex); recordExchange(ex); },
      ruleAllowsAddress: (ex, ip) => (ex.principal ? addressAllowedByRule(policy.current(), ex.principal.team, ip, ex.port).allowed : false),
      readiness: () => {
        const st = policy.status();
        const au = auditSink.status();
        return [
          { name: 'policy', ok: st.ok, detail: st.ok ? `generation ${st.generation} loaded ${st.loadedAt}` : `last reload rejected at ${st.lastErrorAt ?? '?'}; generation ${st.generation} stays in force` },
          { name: 'audit_store', ok: au.ok, detail: `${au.detail}; queued ${au.queued}, dropped ${au.dropped}, refused ${au.failedDecisions}, fail-open ${au.failOpen}` },
        ];
      },
      close: closeAll,
    });
    sso.setGatewayInfo({ proxy: running.proxy, caPem: running.ca.certPem });
    alerts.start();
    alertsStarted = true;
    return running;
  }
}
