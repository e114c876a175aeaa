// Owns: what `tollgate setup --check` concludes and prints — from what the probe through the
// gateway saw (gateway-probe.ts), what the audit trail holds for its request id
// (find-audit-row.ts) and, for Claude Code, what its settings file says — as ok / FAIL / skip
// lines, each failure with a hint. PURE.
import type { AuditLookup } from './find-audit-row.ts';
import type { ProbeResult } from './gateway-probe.ts';

export type CheckStatus = 'ok' | 'fail' | 'skip';

export interface CheckLine {
  status: CheckStatus;
  text: string;
  hint?: string;
}

export interface ProbeContext {
  /** host:port of the proxy as the client uses it. */
  proxy: string;
  /** The CA file the client verifies with. */
  caFile: string;
  probeHost: string;
}

const fail = (text: string, hint: string): CheckLine => ({ status: 'fail', text, hint });
const skip = (text: string, hint?: string): CheckLine => (hint === undefined ? { status: 'skip', text } : { status: 'skip', text, hint });

/** Proxy reachable, token accepted, CA trusted — and the request id to look up in the audit trail. */
export function evaluateProbe(p: ProbeResult, ctx: ProbeContext): { lines: CheckLine[]; requestId: string | undefined } {
  const lines: CheckLine[] = [];
  if (p.unreachable !== undefined) {
    lines.push(fail(`proxy reachable at ${ctx.proxy}: ${p.unreachable}`, 'is the gateway running there? `tollgate login <gateway>` stores the proxy address (TOLLGATE_PROXY overrides it)'));
    lines.push(skip('token accepted (not checked: no proxy)'), skip('CA trusted (not checked: no proxy)'));
    return { lines, requestId: undefined };
  }
  lines.push({ status: 'ok', text: `proxy reachable at ${ctx.proxy}` });
  const c = p.connect;
  if (c === undefined) {
    lines.push(fail(`token accepted: the gateway did not answer CONNECT (${p.error ?? 'no answer'})`, `is ${ctx.proxy} Tollgate's proxy listener (not its admin listener)?`));
    lines.push(skip('CA trusted (not checked)'));
    return { lines, requestId: undefined };
  }
  if (c.status === 407) {
    lines.push(fail(`token accepted: the gateway answered 407${c.reason ? ` (${c.reason})` : ''}`, 'the token is missing, expired, revoked or from another gateway: run `tollgate login <gateway>` again (or fix TOLLGATE_TOKEN), then `tollgate setup <tool>`'));
    lines.push(skip('CA trusted (not checked: the token was refused)'));
    return { lines, requestId: c.requestId };
  }
  lines.push({ status: 'ok', text: `token accepted (CONNECT answered ${c.status}${c.reason ? ` ${c.reason}` : ''})` });
  if (c.status !== 200) {
    lines.push(skip(`CA trusted (not checked: the gateway refused the tunnel to ${ctx.probeHost} with ${c.status}, so no TLS was intercepted)`));
    return { lines, requestId: c.requestId };
  }
  if (p.tls === undefined || !p.tls.ok) {
    const why = p.tls === undefined ? (p.error ?? 'no handshake') : p.tls.error;
    lines.push(fail(`CA trusted: TLS interception of ${ctx.probeHost} is not trusted with ${ctx.caFile} (${why})`,
      "the file does not hold this gateway's CA: get it with `tollgate ca export > ca.pem` on the gateway, then run `tollgate setup <tool> --ca-file ca.pem` (or `tollgate env --ca-file ca.pem`)"));
    return { lines, requestId: undefined };
  }
  const inner = p.inner;
  lines.push({ status: 'ok', text: `CA trusted: TLS interception of ${ctx.probeHost} verified with ${ctx.caFile}${inner ? ` (the gateway answered ${inner.status}${inner.reason ? ` ${inner.reason}` : ''} inside the tunnel)` : ''}` });
  return { lines, requestId: inner?.requestId };
}

/** The audit line for the probe's request. */
export function evaluateAudit(requestId: string | undefined, lookup: AuditLookup | undefined, probeHost: string): CheckLine {
  if (requestId === undefined) {
    return lookup === undefined
      ? skip('request audited (not checked: no request reached the gateway\'s policy)')
      : fail('request audited: the gateway\'s answer carried no X-Request-Id', 'is this a Tollgate gateway of this version?');
  }
  if (lookup === undefined) return skip(`request audited (not checked; request id ${requestId})`);
  if (!lookup.found && !lookup.readable) {
    return skip(`request audited (not checked: ${lookup.why})`, `an admin can confirm with \`tollgate audit --host ${probeHost} --since 1h\` (request id ${requestId})`);
  }
  if (!lookup.found) {
    return fail(`request audited: request ${requestId} is not in the audit trail of ${lookup.source}`, 'is that the gateway this login talks to? (--config names the gateway\'s tollgate.yaml)');
  }
  const r = lookup.row;
  const who = r.subject === null ? undefined : `${r.principal_kind ?? 'principal'} ${r.subject}`;
  if (who === undefined || r.team === null) {
    return fail(`request audited: request ${requestId} is recorded without ${who === undefined ? 'a user' : 'a team'}`, 'the token is not attributed; issue a user or agent token (`tollgate login`, `tollgate token issue`)');
  }
  return { status: 'ok', text: `request audited: ${requestId} (${r.decision}${r.reason ? ` ${r.reason}` : ''}) by ${who}, team ${r.team}${r.project ? `, project ${r.project}` : ''} in ${lookup.source}` };
}

/** Host and port a proxy URL names (without a port: 443 for https, 80 otherwise). */
export function proxyEndpoint(url: URL): { host: string; port: number } {
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port) };
}

/** Claude Code's settings: the env block must send it through this gateway with a CA file. */
export function evaluateClaudeSettings(
  file: string,
  settings: unknown,
  expectedProxy: { host: string; port: number },
  caFileExists: (f: string) => boolean,
): { line: CheckLine; proxyUrl?: string; caFile?: string } {
  const hint = 'run `tollgate setup claude-code` (it merges the env block and keeps your other settings)';
  if (settings === undefined) return { line: fail(`Claude Code settings: ${file} does not exist`, hint) };
  if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) return { line: fail(`Claude Code settings: ${file} is not a JSON object`, hint) };
  const env = (settings as Record<string, unknown>)['env'];
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return { line: fail(`Claude Code settings: ${file} has no "env" block`, hint) };
  const e = env as Record<string, unknown>;
  const proxy = e['HTTPS_PROXY'];
  if (typeof proxy !== 'string' || proxy === '') return { line: fail(`Claude Code settings: ${file} sets no env.HTTPS_PROXY`, hint) };
  let url: URL;
  try {
    url = new URL(proxy);
  } catch {
    return { line: fail(`Claude Code settings: env.HTTPS_PROXY in ${file} is not a URL`, hint) };
  }
  const { host, port } = proxyEndpoint(url);
  if (host !== expectedProxy.host || port !== expectedProxy.port) {
    return { line: fail(`Claude Code settings: env.HTTPS_PROXY points at ${host}:${port}, not at the gateway ${expectedProxy.host}:${expectedProxy.port}`, hint) };
  }
  const ca = e['NODE_EXTRA_CA_CERTS'];
  if (typeof ca !== 'string' || ca === '') return { line: fail(`Claude Code settings: ${file} sets no env.NODE_EXTRA_CA_CERTS (Claude Code would not trust the gateway)`, hint) };
  if (!caFileExists(ca)) return { line: fail(`Claude Code settings: env.NODE_EXTRA_CA_CERTS names ${ca}, which does not exist`, hint) };
  return { line: { status: 'ok', text: `Claude Code settings: ${file} sends Claude Code through ${host}:${port} and trusts ${ca}` }, proxyUrl: proxy, caFile: ca };
}

const MARK: Record<CheckStatus, string> = { ok: 'ok  ', fail: 'FAIL', skip: 'skip' };

export function formatChecks(lines: readonly CheckLine[]): string {
  let out = '';
  for (const l of lines) {
    out += `${MARK[l.status]}  ${l.text}\n`;
    if (l.hint !== undefined && l.status !== 'ok') out += `      hint: ${l.hint}\n`;
  }
  const failed = lines.filter((l) => l.status === 'fail').length;
  const passed = lines.filter((l) => l.status === 'ok').length;
  out += failed === 0 ? `${passed} check(s) passed${lines.length > passed ? `, ${lines.length - passed} skipped` : ''}.\n` : `${failed} check(s) FAILED.\n`;
  return out;
}
