// Owns: `tollgate setup --check [tool]` as I/O — resolve the client's configuration (the tool's
// own settings for Claude Code, else what `tollgate env` would set), send the probe through the
// gateway with it, read the request back from the audit trail, and hand the observations to the
// pure verdicts of setup-check.ts.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { findAuditRow } from './find-audit-row.ts';
import { PROBE_HOST, probeGateway } from './gateway-probe.ts';
import { resolveClient } from './resolve-client.ts';
import { evaluateAudit, evaluateClaudeSettings, evaluateProbe, formatChecks, proxyEndpoint, type CheckLine } from './setup-check.ts';
import type { ToolName } from './tool-instructions.ts';

/** Claude Code's user settings file ($CLAUDE_CONFIG_DIR or ~/.claude). */
export function claudeSettingsFile(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env['CLAUDE_CONFIG_DIR'] ?? path.join(env['HOME'] ?? os.homedir(), '.claude');
  return path.join(dir, 'settings.json');
}

export interface SetupCheckOptions {
  tool?: ToolName | undefined;
  team?: string | undefined;
  project?: string | undefined;
  caFile?: string | undefined;
  configFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  auditWaitMs?: number;
}

function readSettings(file: string): unknown {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch {
    return 'not json';
  }
}

export async function runSetupCheck(opts: SetupCheckOptions): Promise<{ ok: boolean; text: string }> {
  const env = opts.env ?? process.env;
  const client = resolveClient({ team: opts.team, project: opts.project, caFile: opts.caFile, configFile: opts.configFile, env });
  const lines: CheckLine[] = [];
  let proxyUrl = client.proxyUrl;
  let caFile = client.caBundlePath;
  let ca: string | string[] = readFileSync(caFile, 'utf8');
  if (opts.tool === 'claude-code') {
    const file = claudeSettingsFile(env);
    const verdict = evaluateClaudeSettings(file, readSettings(file), client.proxy, (f) => existsSync(f));
    lines.push(verdict.line);
    if (verdict.proxyUrl !== undefined && verdict.caFile !== undefined) {
      // Probe as Claude Code would: its proxy URL, and NODE_EXTRA_CA_CERTS added to Node's roots.
      proxyUrl = verdict.proxyUrl;
      caFile = verdict.caFile;
      ca = [...tls.rootCertificates, readFileSync(caFile, 'utf8')];
    }
  }
  const url = new URL(proxyUrl);
  const proxy = proxyEndpoint(url);
  const probe = await probeGateway({
    proxy, username: decodeURIComponent(url.username), password: decodeURIComponent(url.password), ca, host: PROBE_HOST,
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  });
  const verdict = evaluateProbe(probe, { proxy: `${proxy.host}:${proxy.port}`, caFile, probeHost: PROBE_HOST });
  lines.push(...verdict.lines);
  // A refused token is not looked up: a 407 is not a request of anyone.
  const refused = probe.connect?.status === 407;
  const lookup = refused || verdict.requestId === undefined ? undefined : await findAuditRow({
    requestId: verdict.requestId, host: PROBE_HOST, configFile: opts.configFile, adminUrl: client.login.gateway, token: client.login.token, env,
    ...(opts.auditWaitMs === undefined ? {} : { waitMs: opts.auditWaitMs }),
  });
  lines.push(refused ? { status: 'skip', text: 'request audited (not checked: the token was refused)' } : evaluateAudit(verdict.requestId, lookup, PROBE_HOST));
  const head = `Checking ${opts.tool ?? 'the gateway configuration'}: proxy ${proxy.host}:${proxy.port}${client.scope ? `, scope ${client.scope}` : ''}, probe https://${PROBE_HOST}/\n`;
  return { ok: !lines.some((l) => l.status === 'fail'), text: head + formatChecks(lines) };
}
